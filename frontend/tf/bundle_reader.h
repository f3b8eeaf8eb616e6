// Reader of TensorFlow's TensorBundle checkpoint format (variables/variables.index plus data
// shards): a LevelDB-style table of BundleEntryProto records, every block and tensor CRC32C-checked.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln::tf {

class BundleReader {
 public:
  // Opens PREFIX.index and checks its footer, blocks and header. kNotFound if the index
  // file is missing, kDataLoss for truncation / bad magic / CRC mismatch (naming the file).
  // With `confine_to` (a SavedModel's directory), the index and every data shard must resolve,
  // symlinks followed, inside it (kInvalidArgument otherwise).
  explicit BundleReader(const std::string& prefix, const std::string& confine_to = "");
  ~BundleReader();
  BundleReader(const BundleReader&) = delete;
  BundleReader& operator=(const BundleReader&) = delete;

  std::vector<std::string> Keys() const;
  bool Contains(const std::string& key) const;
  // Reads one tensor, checking its size and masked CRC32C. Every numeric dtype and DT_STRING.
  // kNotFound for an unknown key; kDataLoss (naming the data file and key) for truncation or a
  // CRC mismatch; kUnimplemented for sliced (partitioned) entries.
  Tensor Read(const std::string& key) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The variables of a SavedModel: opens DIR/variables/variables.* on first use (a model with
// no variables may have no such files). Thread-safe.
class VariableReader {
 public:
  explicit VariableReader(std::string saved_model_dir);
  // Reads a tensor by checkpoint key (cached).
  std::shared_ptr<const Tensor> Read(const std::string& checkpoint_key);
  // The TrackableObjectGraph stored under "_CHECKPOINTABLE_OBJECT_GRAPH" (serialized proto bytes).
  std::string ObjectGraphBytes();
  BundleReader& bundle();

 private:
  BundleReader& OpenLocked();  // opens the bundle on first use; mutex_ held

  std::string dir_;
  std::mutex mutex_;
  std::unique_ptr<BundleReader> reader_;
  std::map<std::string, std::shared_ptr<const Tensor>> cache_;
};

}  // namespace kiln::tf
