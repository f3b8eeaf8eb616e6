// CPU backend pieces: the arena planner, payload decoding of garbage, precision choices,
// MakeBackend, Unsupported reasons.
#include <random>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/memory_plan.h"
#include "backend/cpu/plan_serialization.h"
#include "convert/engine_file.h"
#include "convert/ir_codec.h"
#include "tests/unit/cpu_test_util.h"

namespace kiln {
namespace {

using namespace cputest;
using backend::cpu::BufferRequest;
using backend::cpu::CpuBackend;

TEST(CpuArenaPlan, ReusesDeadBuffers) {
  // a [0,1], b [1,2], c [2,3]: a and c can share; b overlaps both.
  const auto plan = backend::cpu::PlanArena({{100, 0, 1}, {100, 1, 2}, {100, 2, 3}});
  EXPECT_EQ(plan.arena_bytes, 256u);  // 2 x 128 (64-byte aligned)
  EXPECT_EQ(plan.offsets[0], plan.offsets[2]);
  EXPECT_NE(plan.offsets[0], plan.offsets[1]);
  EXPECT_EQ(plan.unshared_bytes, 384u);
}

TEST(CpuArenaPlan, FirstFitFillsGaps) {
  // Big [0,5] and big2 [0,1] side by side; small [3,5] fits where big2 was.
  const auto plan = backend::cpu::PlanArena({{1024, 0, 5}, {512, 0, 1}, {256, 3, 5}});
  EXPECT_EQ(plan.offsets[0], 0u);
  EXPECT_EQ(plan.offsets[1], 1024u);
  EXPECT_EQ(plan.offsets[2], 1024u);
  EXPECT_EQ(plan.arena_bytes, 1536u);
}

TEST(CpuArenaPlan, RandomPlansNeverOverlapLiveBuffers) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> req;
    const int n = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) {
      const int first = static_cast<int>(rng() % 20);
      req.push_back({1 + rng() % 5000, first, first + static_cast<int>(rng() % 8)});
    }
    const auto plan = backend::cpu::PlanArena(req);
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(plan.offsets[static_cast<size_t>(i)] % 64, 0u);
      EXPECT_LE(plan.offsets[static_cast<size_t>(i)] + req[static_cast<size_t>(i)].bytes, plan.arena_bytes);
      for (int j = i + 1; j < n; ++j) {
        const auto& a = req[static_cast<size_t>(i)];
        const auto& b = req[static_cast<size_t>(j)];
        if (a.first > b.last || b.first > a.last) continue;
        const size_t ao = plan.offsets[static_cast<size_t>(i)], bo = plan.offsets[static_cast<size_t>(j)];
        EXPECT_TRUE(ao + a.bytes <= bo || bo + b.bytes <= ao) << "trial " << trial << " buffers " << i << " and " << j;
      }
    }
    EXPECT_LE(plan.arena_bytes, plan.unshared_bytes);
  }
}

Builder SmallGraph() {
  Builder b;
  const ir::ValueId x = b.Input("x", {1, 5, 5, 3});
  ir::ValueId y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 3, 4}, 2))}, ConvAttrs("NHWC", "SAME"));
  y = b.Op("Relu", "relu", {y});
  y = b.Op("Exp", "exp", {b.Op("Neg", "neg", {y})});
  b.Output("y", y);
  return b;
}

void ExpectDataLoss(const CpuBackend& cpu, const Builder& b, const backend::Profile& p, std::string_view payload, const std::string& what) {
  try {
    cpu.Deserialize(*b.g, p, {}, payload);
    ADD_FAILURE() << what << ": expected kDataLoss";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << what << ": " << e.what();
  }
}

TEST(CpuPayload, GarbageGivesDataLoss) {
  const Builder b = SmallGraph();
  const auto profile = ExactProfile({{1, 5, 5, 3}});
  CpuBackend cpu;
  const std::string payload = cpu.Compile(*b.g, profile, {})->Serialize();
  ExpectDataLoss(cpu, b, profile, "", "empty");
  ExpectDataLoss(cpu, b, profile, "not an engine at all, just some text of some length", "text");
  std::mt19937 rng(7);
  std::string random(payload.size(), '\0');
  for (char& c : random) c = static_cast<char>(rng());
  ExpectDataLoss(cpu, b, profile, random, "random bytes");
  std::string with_magic = random;
  std::copy(payload.begin(), payload.begin() + 8, with_magic.begin());
  ExpectDataLoss(cpu, b, profile, with_magic, "random bytes after the magic");
  for (size_t len = 0; len < payload.size(); len += std::max<size_t>(1, payload.size() / 97))
    ExpectDataLoss(cpu, b, profile, std::string_view(payload).substr(0, len), "truncated to " + std::to_string(len));
  ExpectDataLoss(cpu, b, profile, payload + "x", "trailing byte");
  EXPECT_EQ(cpu.deserialized_count(), 0);
  // The intact payload still loads.
  EXPECT_NO_THROW(cpu.Deserialize(*b.g, profile, {}, payload));
}

// The payload has no checksum of its own: a flipped byte may decode (a weight changes) or not,
// but never crashes; inside an engine file, the file's CRC32C reports it, naming the section.
TEST(CpuPayload, FlippedBytesAreCaughtByTheEngineFile) {
  const Builder b = SmallGraph();
  const auto profile = ExactProfile({{1, 5, 5, 3}});
  CpuBackend cpu;
  const std::string payload = cpu.Compile(*b.g, profile, {})->Serialize();
  convert::EngineHeader header;
  header.engine_name = "e";
  const std::string file = convert::WriteEngineFile(header, payload);
  const size_t payload_at = file.size() - payload.size();
  for (size_t pos = 8; pos < payload.size(); pos += std::max<size_t>(1, payload.size() / 61)) {
    std::string flipped = payload;
    flipped[pos] = static_cast<char>(flipped[pos] ^ 0x5a);
    try {
      cpu.Deserialize(*b.g, profile, {}, flipped);
    } catch (const Error& e) {
      EXPECT_TRUE(e.code() == ErrorCode::kDataLoss || e.code() == ErrorCode::kInvalidArgument)
          << pos << ": " << e.what();
    }
    std::string flipped_file = file;
    flipped_file[payload_at + pos] = static_cast<char>(flipped_file[payload_at + pos] ^ 0x5a);
    try {
      convert::ReadEngineFile(flipped_file, "e.kiln-engine");
      ADD_FAILURE() << "byte " << pos << " flipped in the engine file was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
      EXPECT_NE(std::string(e.what()).find("section 0 'payload' checksum mismatch"), std::string::npos) << e.what();
    }
  }
}

TEST(CpuPayload, DecodedGraphMatchesEncoded) {
  Builder b = SmallGraph();
  const std::string bytes = backend::cpu::EncodePlan(*b.g, 1234, "x86-64 test", {{"p1", 3}, {"p2", 0}});
  const auto plan = backend::cpu::DecodePlan(bytes);
  EXPECT_EQ(plan.segment_hash, 1234u);
  EXPECT_EQ(plan.device, "x86-64 test");
  ASSERT_EQ(plan.pass_stats.size(), 2u);
  EXPECT_EQ(plan.pass_stats[0].rewrites, 3);
  EXPECT_EQ(ir::GraphToText(plan.graph), ir::GraphToText(*b.g));
  EXPECT_EQ(backend::cpu::HashSegment(plan.graph), backend::cpu::HashSegment(*b.g));
}

// Payloads written before the backend's ops were IR ops name them CpuFusedConv2D,
// CpuEltwiseChain, ...: they load with the names mapped to the cpu.* ops.
TEST(CpuPayload, OldOpNamesLoad) {
  Builder b = SmallGraph();
  const auto profile = ExactProfile({{1, 5, 5, 3}});
  CpuBackend cpu;
  const std::string payload = cpu.Compile(*b.g, profile, {})->Serialize();
  auto plan = backend::cpu::DecodePlan(payload);
  std::vector<std::string> renamed;
  for (ir::Node& n : plan.graph.nodes())
    if (n.op.starts_with("cpu.")) {
      n.op = "Cpu" + n.op.substr(4);
      renamed.push_back(n.op);
    }
  EXPECT_EQ(renamed, (std::vector<std::string>{"CpuFusedConv2D", "CpuEltwiseChain"}));
  const std::string old = backend::cpu::EncodePlan(plan.graph, plan.segment_hash, plan.device, plan.pass_stats);
  ASSERT_NE(old, payload);
  auto loaded = cpu.Deserialize(*b.g, profile, {}, old);
  EXPECT_EQ(CountOps(*loaded, "cpu.FusedConv2D"), 1);
  EXPECT_EQ(CountOps(*loaded, "cpu.EltwiseChain"), 1);
  EXPECT_EQ(loaded->Serialize(), payload);

  // An op this build does not know is reported by name.
  for (ir::Node& n : plan.graph.nodes())
    if (n.op == "CpuEltwiseChain") n.op = "cpu.FutureOp";
  try {
    backend::cpu::DecodePlan(backend::cpu::EncodePlan(plan.graph, plan.segment_hash, plan.device, plan.pass_stats));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find("unknown op 'cpu.FutureOp'"), std::string::npos) << e.what();
  }
}

TEST(CpuPayload, SegmentHashSeesWeightsAndStructure) {
  const Builder a = SmallGraph(), b = SmallGraph();
  EXPECT_EQ(backend::cpu::HashSegment(*a.g), backend::cpu::HashSegment(*b.g));
  Builder c = SmallGraph();
  for (ir::Node& n : c.g->nodes())
    if (n.op == "Constant" && n.name == "w") {
      Tensor t = RandF32({3, 3, 3, 4}, 3);
      n.attrs.Set("value", t);
      c.g->value(n.outputs[0]).constant = std::make_shared<const Tensor>(t);
    }
  EXPECT_NE(backend::cpu::HashSegment(*a.g), backend::cpu::HashSegment(*c.g));
  // One changed attribute changes it too.
  Builder d = SmallGraph();
  for (ir::Node& n : d.g->nodes())
    if (n.op == "Conv2D") n.attrs.Set("padding", std::string("VALID"));
  EXPECT_NE(backend::cpu::HashSegment(*a.g), backend::cpu::HashSegment(*d.g));
}

TEST(CpuPayload, SegmentHashSurvivesTheIrCodec) {
  // Converted models store segments through the IR codec, which renumbers symbols by first
  // appearance; the segment hash must not change.
  Builder b;
  b.Symbol("unused");
  const ir::Dim n = b.Symbol("batch");
  const ir::ValueId x = b.Input("x", {n, 5, 5, 3});
  ir::ValueId y = b.Op("Conv2D", "conv", {x, b.Const("w", RandF32({3, 3, 3, 4}, 2))}, ConvAttrs("NHWC", "SAME"));
  ir::AttrMap leaky;
  leaky.Set("alpha", 0.25);
  y = b.Op("LeakyRelu", "act", {y}, leaky);
  b.Output("y", y);
  const ir::Graph decoded = convert::DecodeIrGraph(convert::EncodeIrGraph(*b.g));
  EXPECT_EQ(backend::cpu::HashSegment(decoded), backend::cpu::HashSegment(*b.g));
  // And a payload built from the original loads for the decoded segment.
  CpuBackend cpu;
  backend::Profile p;
  p.inputs.push_back({{1, 5, 5, 3}, {2, 5, 5, 3}, {4, 5, 5, 3}});
  const std::string payload = cpu.Compile(*b.g, p, {})->Serialize();
  auto engine = cpu.Deserialize(decoded, p, {}, payload);
  EXPECT_EQ(cpu.deserialized_count(), 1);
}

TEST(CpuPrecision, Choices) {
  backend::cpu::CpuFeatures avx2;
  avx2.arch = "x86-64";
  avx2.avx2 = avx2.fma = true;
  auto c = backend::cpu::ChoosePrecision(Precision::kBF16, avx2);
  EXPECT_EQ(c.precision, Precision::kFP32);
  EXPECT_FALSE(c.bf16_math);
  EXPECT_EQ(c.note, "BF16 requested; this CPU (x86-64 avx2 fma) has no native BF16 arithmetic, engine runs FP32");
  c = backend::cpu::ChoosePrecision(Precision::kFP16, avx2);
  EXPECT_EQ(c.precision, Precision::kFP32);
  EXPECT_EQ(c.note, "FP16 requested; this CPU (x86-64 avx2 fma) has no native FP16 arithmetic, engine runs FP32");
  c = backend::cpu::ChoosePrecision(Precision::kFP32, avx2);
  EXPECT_EQ(c.precision, Precision::kFP32);
  EXPECT_EQ(c.note, "");
  backend::cpu::CpuFeatures spr = avx2;
  spr.avx512f = spr.avx512_bf16 = spr.amx_bf16 = true;
  c = backend::cpu::ChoosePrecision(Precision::kBF16, spr);
  EXPECT_EQ(c.precision, Precision::kBF16);
  EXPECT_TRUE(c.bf16_math);
  EXPECT_EQ(c.note, "");
  EXPECT_EQ(backend::cpu::DeviceString(spr), "x86-64 avx2 fma avx512f avx512_bf16 amx_bf16");
}

TEST(CpuBackendApi, MakeBackend) {
  auto cpu = backend::MakeBackend("cpu");
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->name(), "cpu");
  EXPECT_EQ(cpu->device().rfind(backend::cpu::HostCpu().arch, 0), 0u) << cpu->device();
  try {
    backend::MakeBackend("tpu");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("this build of Kiln has: cpu"), std::string::npos) << e.what();
  }
}

TEST(CpuBackendApi, UnsupportedReasons) {
  Builder b;
  const ir::ValueId x = b.Input("x", {4});
  const ir::ValueId s = b.Input("s", {2}, DType::kString);
  const ir::ValueId relu = b.Op("Relu", "relu", {x});
  const ir::ValueId where = b.Op("Where", "where", {x});
  const ir::ValueId eq = b.Op("Equal", "eq", {s, s});
  CpuBackend cpu;
  auto node_of = [&](ir::ValueId v) -> const ir::Node& { return *b.g->Producer(v); };
  EXPECT_EQ(cpu.Unsupported(*b.g, node_of(relu)), std::nullopt);
  EXPECT_EQ(cpu.Unsupported(*b.g, node_of(where)), std::optional<std::string>("data-dependent output shape"));
  EXPECT_EQ(cpu.Unsupported(*b.g, node_of(eq)), std::optional<std::string>("dtype string is not supported by the CPU backend"));
  ir::Node fake_if;
  fake_if.op = "If";
  EXPECT_EQ(cpu.Unsupported(*b.g, fake_if), std::optional<std::string>("control flow runs natively"));
  fake_if.op = "While";
  EXPECT_EQ(cpu.Unsupported(*b.g, fake_if), std::optional<std::string>("control flow runs natively"));
  fake_if.op = "Unique";
  EXPECT_EQ(cpu.Unsupported(*b.g, fake_if), std::optional<std::string>("data-dependent output shape"));
  fake_if.op = "UniqueWithCounts";
  EXPECT_EQ(cpu.Unsupported(*b.g, fake_if), std::optional<std::string>("data-dependent output shape"));
  // Compile refuses a segment with an unsupported node.
  b.Output("w", where);
  try {
    cpu.Compile(*b.g, ExactProfile({{4}, {2}}), {});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("node 'where' (Where)"), std::string::npos) << e.what();
  }
}

TEST(CpuBackendApi, ProfileMustFitSegment) {
  const Builder b = SmallGraph();
  CpuBackend cpu;
  for (const backend::Profile& p : {ExactProfile({}), ExactProfile({{1, 5, 5}}), ExactProfile({{1, 6, 5, 3}})}) {
    try {
      cpu.Compile(*b.g, p, {});
      ADD_FAILURE() << p.ToString();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    }
  }
}

}  // namespace
}  // namespace kiln
