#!/usr/bin/env python3
"""PyTorch-exported ONNX models through Kiln, against onnxruntime: torchvision's classification,
segmentation and detection families, a transformers encoder (BERT) and decoder (GPT-2), and
recurrent models (LSTM, GRU), each exported with PyTorch's legacy exporter (TorchScript,
`dynamo=False`) and its dynamo exporter (`dynamo=True`) at several opsets, random weights.

Per model and export: onnxruntime (CPU) runs it on random inputs; `kiln run` (CPU engines) runs it
on the same inputs, and the outputs must match (relative L2 <= 1e-4, FP32; detections compared
without the order of tied scores, see detection_error); `kiln convert` + `kiln summary` give the
share of ops in engines. Runs on the CPU of any machine; needs torch, torchvision, transformers,
onnx, onnxscript and onnxruntime (scripts/setup_torch_venv.sh makes a venv with them):

    "$(scripts/setup_torch_venv.sh)"/bin/python scripts/torch_export_sweep.py --kiln build/tools/kiln \
        --json sweep.json --markdown docs/pytorch-export-table.md \
        [--models resnet18,...] [--exports legacy11,legacy13,legacy17,dynamo18,dynamo20] [--budget-s 2700]

Results are written after every case (a cut-off run keeps what it did); the table is what
docs/pytorch-export.md shows.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

BOUND = 1e-4


def log(msg):
    print(msg, flush=True)


# ---- models: name -> (family, builder(torch) -> (module, example inputs tuple, input names)) ----

def tv(name, family, size=224, **kw):
    def build(torch):
        import torchvision
        torch.manual_seed(0)
        m = getattr(torchvision.models if family == "classification" else getattr(torchvision.models, family),
                    name)(weights=None, **kw).eval()
        if hasattr(m, "heads"):  # ViT's head starts at zero: every output would be 0 and match trivially
            torch.nn.init.normal_(m.heads.head.weight, std=0.02)
        return m, (torch.randn(1, 3, size, size),), ["image"]
    return family, build


def wrap_dict(torch, model, keys):
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            out = self.m(x)
            return tuple(out[k] for k in keys)
    return Wrapped().eval()


def segmentation(name):
    def build(torch):
        import torchvision
        torch.manual_seed(0)
        m = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, aux_loss=False).eval()
        return wrap_dict(torch, m, ["out"]), (torch.randn(1, 3, 224, 224),), ["image"]
    return "segmentation", build


def normalize_batchnorms(torch, model, inputs):
    """Sets every batch norm's running mean and variance to those of its input on `inputs`, layer
    by layer in one forward pass, so each normalizes about as a trained one would."""
    def set_statistics(module, args):
        x = args[0]
        dims = [d for d in range(x.dim()) if d != 1]
        module.running_mean.copy_(x.mean(dims))
        # Channels that barely vary on one image (dead ones after a ReLU) would divide by ~0 and
        # amplify rounding: their variance is floored at a tenth of the layer's mean.
        var = x.var(dims)
        module.running_var.copy_(var.clamp_min(0.1 * float(var.mean())))
    hooks = [mod.register_forward_pre_hook(set_statistics) for mod in model.modules()
             if type(mod).__name__ in ("BatchNorm2d", "FrozenBatchNorm2d")]
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()


def detection(name, size=320, head_noise=0.02):
    def build(torch):
        import torchvision
        torch.manual_seed(0)
        m = getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None).eval()
        # Untrained detectors give degenerate outputs that any runtime matches trivially: with their
        # batch norms' default statistics the activations of deep backbones grow until every score
        # saturates at 1, and freshly initialised heads score every class alike. Statistics set from
        # the example image (as training would) and noise on the heads give distinct scores and boxes.
        image = torch.rand(1, 3, size, size)
        normalize_batchnorms(torch, m, ([image[0]],))
        # Unit-variance residual branches in a deep ResNet amplify rounding a hundredfold (every
        # runtime then gives different detections); trained ones scale the branch down at its last
        # batch norm, as torchvision's zero_init_residual does from the start.
        with torch.no_grad():
            for mod in m.modules():
                if type(mod).__name__ in ("Bottleneck", "BasicBlock"):
                    last = mod.bn3 if hasattr(mod, "bn3") else mod.bn2
                    last.weight.mul_(0.2)
        with torch.no_grad():
            for pname, p in m.named_parameters():
                if "head" in pname:
                    p.add_(head_noise * torch.randn_like(p))

        class Det(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = m

            def forward(self, x):
                out = self.m([x[0]])[0]
                return out["boxes"], out["scores"], out["labels"]
        return Det().eval(), (image,), ["image"]
    return "detection", build


def bert(torch):
    import transformers
    torch.manual_seed(0)
    # Eager attention: the legacy exporter has no scaled_dot_product_attention below opset 14.
    cfg = transformers.BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                                  attn_implementation="eager")
    m = transformers.BertModel(cfg, add_pooling_layer=False).eval()

    class Enc(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, ids, mask):
            return self.m(input_ids=ids, attention_mask=mask).last_hidden_state
    ids = torch.randint(0, cfg.vocab_size, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.int64)
    mask[1, 12:] = 0
    return Enc().eval(), (ids, mask), ["input_ids", "attention_mask"]


def gpt2(torch):
    import transformers
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_embd=128, n_layer=2, n_head=2, use_cache=False, attn_implementation="eager")
    m = transformers.GPT2Model(cfg).eval()

    class Dec(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, ids):
            # Explicit positions and mask: without them transformers derives them with aten::diff,
            # which the legacy exporter cannot export.
            pos = torch.arange(ids.shape[1]).unsqueeze(0)
            return self.m(input_ids=ids, position_ids=pos, attention_mask=torch.ones_like(ids)).last_hidden_state
    return Dec().eval(), (torch.randint(0, cfg.vocab_size, (2, 16)),), ["input_ids"]


def rnn(kind):
    def build(torch):
        torch.manual_seed(0)
        cell = getattr(torch.nn, kind)(32, 48, num_layers=2, batch_first=True, bidirectional=True)

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = cell
                self.head = torch.nn.Linear(96, 10)

            def forward(self, x):
                y, _ = self.rnn(x)
                return self.head(y)
        return Net().eval(), (torch.randn(3, 7, 32),), ["x"]
    return "recurrent", build


MODELS = {
    "resnet18": tv("resnet18", "classification"),
    "resnext50_32x4d": tv("resnext50_32x4d", "classification"),
    "mobilenet_v2": tv("mobilenet_v2", "classification"),
    "regnet_y_400mf": tv("regnet_y_400mf", "classification"),
    "swin_t": tv("swin_t", "classification"),
    "mobilenet_v3_small": tv("mobilenet_v3_small", "classification"),
    "efficientnet_b0": tv("efficientnet_b0", "classification"),
    "shufflenet_v2_x0_5": tv("shufflenet_v2_x0_5", "classification"),
    "squeezenet1_0": tv("squeezenet1_0", "classification"),
    "densenet121": tv("densenet121", "classification"),
    "convnext_tiny": tv("convnext_tiny", "classification"),
    "vit_b_16": tv("vit_b_16", "classification"),
    "fcn_resnet50": segmentation("fcn_resnet50"),
    "deeplabv3_mobilenet_v3_large": segmentation("deeplabv3_mobilenet_v3_large"),
    "lraspp_mobilenet_v3_large": segmentation("lraspp_mobilenet_v3_large"),
    "ssdlite320_mobilenet_v3_large": detection("ssdlite320_mobilenet_v3_large"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": detection("fasterrcnn_mobilenet_v3_large_320_fpn"),
    # These resize images to a shorter side of 800: 400-pixel inputs make the scale exactly 2, whose
    # bilinear weights float32 holds exactly (at 2.5 every runtime rounds them a little differently,
    # and these untrained backbones amplify such differences ~100-fold).
    "retinanet_resnet50_fpn": detection("retinanet_resnet50_fpn", size=400, head_noise=0.025),
    "fcos_resnet50_fpn": detection("fcos_resnet50_fpn", size=400, head_noise=0.05),
    "bert_encoder": ("transformer", bert),
    "gpt2_decoder": ("transformer", gpt2),
    "lstm": rnn("LSTM"),
    "gru": rnn("GRU"),
}

EXPORTS = {"legacy11": ("legacy", 11), "legacy13": ("legacy", 13), "legacy17": ("legacy", 17),
           "dynamo18": ("dynamo", 18), "dynamo20": ("dynamo", 20)}


def export(torch, model, inputs, names, path, exporter, opset):
    if exporter == "legacy":
        torch.onnx.export(model, inputs, path, input_names=names, opset_version=opset, do_constant_folding=True,
                          dynamo=False)
    else:
        prog = torch.onnx.export(model, inputs, input_names=names, opset_version=opset, dynamo=True, verbose=False)
        prog.save(path)


def safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def rel_l2(got, want):
    ref = np.asarray(want, np.float64)
    return float(np.linalg.norm(np.asarray(got, np.float64) - ref) / max(np.linalg.norm(ref), 1e-30))


def detection_error(want, got):
    """Relative L2 error of detections (boxes, scores, labels) that does not depend on the order of
    equal scores: ONNX leaves the order of NonMaxSuppression's selections with equal scores open
    (onnxruntime's follows its heap), so both runtimes may keep different ones of a tied group at
    the detections-per-image cut. Scores are compared sorted; the rows whose score is tied with
    another within 2e-5 of the largest score (rounding differences reorder them) are left out of the box and label comparison, the others are
    paired by score. Returns (worst error, number of tied rows); labels must be equal."""
    (wb, ws, wl), (gb, gs, gl) = [[np.asarray(a) for a in outs] for outs in (want, got)]
    err = rel_l2(np.sort(gs), np.sort(ws))
    if len(ws) == 0:
        return err, 0
    tol = 2e-5 * max(float(np.abs(ws).max()), 1e-30)  # scores differ by ~4e-6 between runtimes
    order = np.argsort(-ws, kind="stable")
    s = ws[order]
    tied = np.zeros(len(s), bool)
    tied[1:] |= np.abs(np.diff(s)) <= tol
    tied[:-1] |= np.abs(np.diff(s)) <= tol
    keep = order[~tied]
    # Each untied reference row pairs with Kiln's row of the nearest score.
    g_order = np.argsort(gs, kind="stable")
    g_sorted = gs[g_order]
    hi = np.clip(np.searchsorted(g_sorted, ws[keep]), 0, len(gs) - 1)
    lo = np.clip(hi - 1, 0, len(gs) - 1)
    nearer_lo = np.abs(g_sorted[lo] - ws[keep]) < np.abs(g_sorted[hi] - ws[keep])
    match = g_order[np.where(nearer_lo, lo, hi)]
    err = max(err, rel_l2(gb[match], wb[keep]) if len(keep) else 0.0)
    if not np.array_equal(gl[match], wl[keep]):
        err = max(err, 1.0)
    return err, int(tied.sum())


def run_case(torch, ort, kiln, name, export_key, work):
    family, build = MODELS[name]
    exporter, opset = EXPORTS[export_key]
    row = {"model": name, "family": family, "export": export_key}
    model, inputs, names = build(torch)
    path = os.path.join(work, "%s_%s.onnx" % (name, export_key))
    t0 = time.time()
    with torch.no_grad():
        export(torch, model, inputs, names, path, exporter, opset)
    row["export_s"] = round(time.time() - t0, 1)
    import onnx
    m = onnx.load(path, load_external_data=False)
    row["opset"] = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    row["nodes"] = len(m.graph.node)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds, args = {}, []
    ort_inputs = [i.name for i in sess.get_inputs()]
    for i, t in enumerate(inputs):
        if i >= len(ort_inputs):
            break
        a = t.numpy()
        feeds[ort_inputs[i]] = a
        f = os.path.join(work, safe(ort_inputs[i]) + ".npy")
        np.save(f, a)
        args += ["--input", "%s=%s" % (ort_inputs[i], f)]
    want = sess.run(None, feeds)
    out_names = [o.name for o in sess.get_outputs()]
    out_dir = os.path.join(work, "out_%s_%s" % (name, export_key))
    p = subprocess.run([kiln, "run", path, "--output-dir", out_dir] + args, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        row["result"] = "kiln run failed"
        row["error"] = p.stderr.strip().splitlines()[-1][-400:] if p.stderr.strip() else "exit %d" % p.returncode
        return row
    worst = 0.0
    got_all = [np.load(os.path.join(out_dir, safe(n) + ".npy")) for n in out_names]
    for n, got, w in zip(out_names, got_all, want):
        w = np.asarray(w)
        if got.shape != w.shape:
            row["result"] = "shape differs"
            row["error"] = "output %s: kiln %s, onnxruntime %s" % (n, got.shape, w.shape)
            return row
    if family == "detection":
        worst, row["tied_rows"] = detection_error(want, got_all)
        got_all, want = [], []  # compared above
    for n, got, w in zip(out_names, got_all, want):
        w = np.asarray(w)
        if w.dtype.kind in "iub":
            err = 0.0 if np.array_equal(got, w) else 1.0
        else:
            ref = w.astype(np.float64)
            err = float(np.linalg.norm(got.astype(np.float64) - ref) / max(np.linalg.norm(ref), 1e-30))
        worst = max(worst, err)
    row["rel_l2"] = worst
    conv = os.path.join(work, "conv_%s_%s" % (name, export_key))
    p = subprocess.run([kiln, "convert", path, conv], capture_output=True, text=True, timeout=300)
    if p.returncode == 0:
        s = subprocess.run([kiln, "summary", conv], capture_output=True, text=True, timeout=120).stdout
        mm = re.search(r"% of OPs Converted: ([0-9.]+)% \[(\d+)/(\d+)\]", s)
        if mm:
            row["converted_pct"] = float(mm.group(1))
            row["converted"] = "%s/%s" % (mm.group(2), mm.group(3))
    else:
        row["convert_error"] = p.stderr.strip().splitlines()[-1][-300:] if p.stderr.strip() else "failed"
    row["result"] = "match" if worst <= BOUND else "MISMATCH"
    return row


def markdown_table(rows):
    """The results as the lines of a markdown table (docs/pytorch-export.md)."""
    table = ["| model | family | export | opset | result | rel L2 vs onnxruntime | ops in engines |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["model"], r["family"], r["export"], r.get("opset", "-"), r["result"] + (
                " (" + r["error"][:120].replace("|", "/") + ")" if r.get("error") else ""),
            ("%.1e" % r["rel_l2"] if "rel_l2" in r else "-") + (
                " (%d tied rows left out)" % r["tied_rows"] if r.get("tied_rows") else ""),
            "%s%% (%s)" % (r["converted_pct"], r["converted"]) if "converted_pct" in r else r.get("convert_error", "-")[:80]))
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--exports", default="legacy11,legacy17,dynamo18,dynamo20")
    ap.add_argument("--budget-s", type=float, default=520, help="stop starting new cases after this long")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None, help="also write the results table here")
    args = ap.parse_args()
    import torch
    import onnxruntime as ort
    # nn.MultiheadAttention's inference fast path is one fused aten op that the legacy exporter cannot export.
    torch.backends.mha.set_fastpath_enabled(False)
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    results = {"torch": torch.__version__, "onnxruntime": ort.__version__, "command": " ".join(sys.argv), "rows": []}
    start = time.time()
    with tempfile.TemporaryDirectory() as work:
        for name in args.models.split(","):
            for key in args.exports.split(","):
                if time.time() - start > args.budget_s:
                    log("budget reached: %s %s not run" % (name, key))
                    continue
                t0 = time.time()
                try:
                    row = run_case(torch, ort, args.kiln, name, key, work)
                except Exception as e:  # an exporter failure is PyTorch's; recorded, the sweep goes on
                    # torch.export's errors say "step 1/3 failed"; their cause says why.
                    cause = e.__cause__ if isinstance(e.__cause__, Exception) else e
                    row = {"model": name, "family": MODELS[name][0], "export": key, "result": "export/ort failed",
                           "error": ("%s: %s" % (type(cause).__name__, cause)).splitlines()[0][:300]}
                    if os.environ.get("SWEEP_TRACE"):
                        traceback.print_exc()
                row["seconds"] = round(time.time() - t0, 1)
                results["rows"].append(row)
                log("%-40s %-9s %-18s rel L2 %-9s converted %-14s %s" % (
                    name, key, row.get("result"), "%.1e" % row["rel_l2"] if "rel_l2" in row else "-",
                    row.get("converted", "-"), row.get("error", row.get("convert_error", ""))[:160]))
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump(results, f, indent=1)
    table = markdown_table(results["rows"])
    log("\n" + "\n".join(table))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
