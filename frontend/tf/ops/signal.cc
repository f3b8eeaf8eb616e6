// TF importers of the FFT family (FFT/IFFT, RFFT/IRFFT in 1-3 dims) and the complex elementwise
// ops (ComplexAbs, Real, Imag, Angle, Conj, Complex). See docs/ops/signal.md.
#include <fmt/format.h>

#include <string>

#include "frontend/tf/importer.h"
#include "ir/ops/signal_fft_util.h"

namespace kiln::tf {

void RegisterSignalImporters(ImporterTable& table);

namespace {

using frontend::Attrs;

void CheckComplexAttr(ImportContext& ctx, const std::string& attr) {
  const DType t = ctx.attr_type(attr);
  if (!ir::signal::IsComplex(t))
    ctx.Unsupported(fmt::format("{} = {} is not supported (complex64, complex128)", attr, DTypeName(t)));
}

// FFT, IFFT, FFT2D, IFFT2D, FFT3D, IFFT3D.
template <int kRank, bool kInverse>
void ImportFft(ImportContext& ctx) {
  CheckComplexAttr(ctx, "Tcomplex");
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("FFT", {ctx.input(0)}, Attrs({{"rank", int64_t{kRank}}, {"inverse", kInverse}})));
}

// RFFT, IRFFT, RFFT2D, IRFFT2D, RFFT3D, IRFFT3D: Treal float32 / float64 with its complex type.
template <int kRank, bool kInverse>
void ImportRealFft(ImportContext& ctx) {
  const DType real = ctx.attr_type("Treal");
  const DType complex = ctx.attr_type("Tcomplex");
  if (ir::signal::ComplexOf(real) != complex)
    ctx.Unsupported(
        fmt::format("Treal = {} with Tcomplex = {} is not supported (float32 with complex64, float64 "
                    "with complex128)",
                    DTypeName(real), DTypeName(complex)));
  if (ctx.validate_only()) return;
  ctx.SetOutput(
      0, ctx.Emit1(kInverse ? "IRFFT" : "RFFT", {ctx.input(0), ctx.input(1)}, Attrs({{"rank", int64_t{kRank}}})));
}

// ComplexAbs, Real, Imag, Angle (T complex, Tout its real type), Conj (T complex).
void ImportComplexUnary(ImportContext& ctx) {
  CheckComplexAttr(ctx, "T");
  if (ctx.has_attr("Tout") && ctx.attr_type("Tout") != ir::signal::RealOf(ctx.attr_type("T")))
    ctx.Unsupported(fmt::format("T = {} with Tout = {} is not supported", DTypeName(ctx.attr_type("T")),
                                DTypeName(ctx.attr_type("Tout"))));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1(ctx.op(), {ctx.input(0)}));
}

// Complex(real, imag): T float32 / float64, Tout its complex type; broadcasting.
void ImportComplex(ImportContext& ctx) {
  const DType t = ctx.attr_type("T");
  const DType out = ctx.has_attr("Tout") ? ctx.attr_type("Tout") : ir::signal::ComplexOf(t);
  if (ir::signal::ComplexOf(t) != out)
    ctx.Unsupported(
        fmt::format("T = {} with Tout = {} is not supported (float32 with complex64, float64 with "
                    "complex128)",
                    DTypeName(t), DTypeName(out)));
  if (ctx.validate_only()) return;
  ctx.SetOutput(0, ctx.Emit1("Complex", {ctx.input(0), ctx.input(1)}));
}

}  // namespace

void RegisterSignalImporters(ImporterTable& table) {
  const TfAttrDefault c64 = DType::kComplex64, f32 = DType::kFloat32;
  table.Add({"FFT", ImportFft<1, false>, {}, {{"Tcomplex", c64}}});
  table.Add({"IFFT", ImportFft<1, true>, {}, {{"Tcomplex", c64}}});
  table.Add({"FFT2D", ImportFft<2, false>, {}, {{"Tcomplex", c64}}});
  table.Add({"IFFT2D", ImportFft<2, true>, {}, {{"Tcomplex", c64}}});
  table.Add({"FFT3D", ImportFft<3, false>, {}, {{"Tcomplex", c64}}});
  table.Add({"IFFT3D", ImportFft<3, true>, {}, {{"Tcomplex", c64}}});
  table.Add({"RFFT", ImportRealFft<1, false>, {}, {{"Treal", f32}, {"Tcomplex", c64}}});
  table.Add({"IRFFT", ImportRealFft<1, true>, {}, {{"Treal", f32}, {"Tcomplex", c64}}});
  table.Add({"RFFT2D", ImportRealFft<2, false>, {}, {{"Treal", f32}, {"Tcomplex", c64}}});
  table.Add({"IRFFT2D", ImportRealFft<2, true>, {}, {{"Treal", f32}, {"Tcomplex", c64}}});
  table.Add({"RFFT3D", ImportRealFft<3, false>, {}, {{"Treal", f32}, {"Tcomplex", c64}}});
  table.Add({"IRFFT3D", ImportRealFft<3, true>, {}, {{"Treal", f32}, {"Tcomplex", c64}}});
  for (const char* op : {"ComplexAbs", "Real", "Imag", "Angle"})
    table.Add({op, ImportComplexUnary, {}, {{"T", c64}, {"Tout", f32}}});
  table.Add({"Conj", ImportComplexUnary, {}, {{"T", c64}}});
  table.Add({"Complex", ImportComplex, {}, {{"T", f32}, {"Tout", c64}}});
}

}  // namespace kiln::tf
