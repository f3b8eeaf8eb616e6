"""kiln.Converter: TF-TRT's conversion workflow (convert, build, save, summary) on Kiln's engines."""

import dataclasses
import os
import sys
from collections.abc import Mapping

from kiln import _kiln
from kiln._model import Function, load
from kiln._tensors import to_native
from kiln.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class ConversionParams:
    """Conversion parameters, named and defaulted as TF-TRT's (``TrtConversionParams``), plus
    Kiln's own (device, calibrator, ...). Immutable; ``params._replace(field=value)`` makes a copy
    with changes, as on TF-TRT's namedtuple."""

    precision_mode: str = "FP32"  # FP32, FP16, BF16, INT8, FP8 (case-insensitive)
    max_workspace_size_bytes: int = 1 << 30
    minimum_segment_size: int = 3  # -1 disables conversion
    maximum_cached_engines: int = 1
    use_calibration: bool = True  # INT8 and FP8 only
    allow_build_at_runtime: bool = True
    use_dynamic_shape: bool = False
    dynamic_shape_profile_strategy: str = "Range"  # Range, Optimal, Range+Optimal, ImplicitBatchModeCompatible
    is_dynamic_op: bool = True  # TF-TRT V1; False is rejected
    max_batch_size: int = 1  # implicit batch only
    denylist: tuple = ()  # op types never converted
    device: str = "cpu"  # engine backend: cpu, cuda
    calibrator: str = ""  # INT8 / FP8: entropy, minmax, percentile ("": entropy for INT8, minmax for FP8)
    calibration_percentile: float = 99.99
    calibration_table: str = ""  # INT8: a calibration table file to use instead of calibrating
    keep_precision: tuple = ()  # INT8: layers kept in floating point (names, op types, prefix*)

    def _replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def _native(self):
        p = _kiln.ConversionParams()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("denylist", "keep_precision"):
                if isinstance(value, str):
                    value = [value]
                value = [str(v) for v in value]
            elif f.name == "precision_mode":
                value = str(getattr(value, "value", value))
            elif f.name == "calibration_table":
                value = os.fspath(value) if value else ""
            try:
                setattr(p, f.name, value)
            except TypeError:
                raise InvalidArgumentError(f"ConversionParams.{f.name}: {value!r} is not a "
                                           f"{type(getattr(p, f.name)).__name__}") from None
        p.validate()
        return p


def _print_stderr(line):
    print(line, file=sys.stderr, flush=True)


def _input_stream(fn, names, what):
    """`fn` (a generator function, or an iterable) as the callable kiln._kiln pulls input lists
    from: each item a tuple/list (signature order), a dict (by input name) or one array."""
    if fn is None:
        return None
    iterator = iter(fn() if callable(fn) else fn)
    count = [0]

    def next_inputs():
        try:
            item = next(iterator)
        except StopIteration:
            return None
        count[0] += 1
        where = f"{what} item {count[0]}"
        if isinstance(item, Mapping):
            input_names = names()
            unknown = [k for k in item if k not in input_names]
            if unknown:
                raise InvalidArgumentError(f"{where}: no input named {', '.join(map(str, unknown))}; the signature's "
                                           f"inputs: {', '.join(input_names)}")
            missing = [n for n in input_names if n not in item]
            if missing:
                raise InvalidArgumentError(f"{where}: input(s) {', '.join(missing)} missing")
            item = [item[n] for n in input_names]
        elif not isinstance(item, (tuple, list)):
            item = [item]
        return [to_native(v, None, f"{where}, input {i}") for i, v in enumerate(item)]

    return next_inputs


class Converter:
    """Converts a SavedModel (or ONNX model) for Kiln's engines, with TF-TRT's workflow::

        converter = kiln.Converter("/models/bert", conversion_params=kiln.ConversionParams(precision_mode="FP16"))
        func = converter.convert()            # INT8: convert(calibration_input_fn=gen)
        converter.build(input_fn=gen)         # optional: engines for these input shapes now
        converter.save("/models/bert_kiln")   # load with kiln.load
        print(converter.summary())

    Parameters may be given as ``conversion_params`` or as keyword arguments (which override it).
    ``progress`` receives each progress line (calibration, engine builds, saving); by default they
    are printed to ``sys.stderr``; ``progress=False`` silences them.
    """

    def __init__(self, input_saved_model_dir, input_saved_model_tags=None, input_saved_model_signature_key=None,
                 conversion_params=None, *, progress=None, **params):
        base = conversion_params if conversion_params is not None else ConversionParams()
        if not isinstance(base, ConversionParams):
            base = ConversionParams(**{k: v for k, v in base._asdict().items() if k in _FIELDS})
        unknown = [k for k in params if k not in _FIELDS]
        if unknown:
            raise TypeError(f"Converter got unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
        self.conversion_params = base._replace(**params)
        if isinstance(input_saved_model_tags, str):
            input_saved_model_tags = [input_saved_model_tags]
        self._dir = os.fspath(input_saved_model_dir)
        self._tags = list(input_saved_model_tags or ["serve"])
        self._key = input_saved_model_signature_key or "serving_default"
        log = _print_stderr if progress is None else (None if progress is False else progress)
        if log is None:
            log = _discard
        self._native = _kiln.Converter(self._dir, self._tags, self._key, self.conversion_params._native(), log)
        self._input_names = None
        self._function = None

    def _names(self):
        # Input names for dict items; before convert() they come from the source model itself.
        if self._input_names is None:
            if self._function is not None:
                self._input_names = [s.name for s in self._function.inputs]
            else:
                sig = load(self._dir, self._tags).signatures[self._key]
                self._input_names = [s.name for s in sig.inputs]
        return self._input_names

    def convert(self, calibration_input_fn=None):
        """Imports, optimizes and segments the model; INT8 with use_calibration calibrates on the
        batches ``calibration_input_fn`` yields. Returns the converted function (a
        ``kiln.Function``, runnable before ``save``)."""
        self._native.convert(_input_stream(calibration_input_fn, self._names, "calibration_input_fn"))
        self._function = Function(self._native.signature(), self)
        return self._function

    def build(self, input_fn):
        """Runs the converted model on each input set ``input_fn`` yields to build engines for
        those shapes (or, with use_dynamic_shape, profiles by dynamic_shape_profile_strategy)."""
        if input_fn is None:
            raise InvalidArgumentError("build() needs an input_fn: a generator function yielding input lists")
        self._native.build(_input_stream(input_fn, self._names, "input_fn"))

    def build_profiles(self, profiles):
        """Builds engines for explicit shape ranges: a list of {input name: (min, opt, max)} dicts
        (needs use_dynamic_shape=True)."""
        native = []
        for profile in profiles:
            native.append({name: [list(s) for s in shapes] for name, shapes in profile.items()})
        self._native.build_profiles(native)

    def save(self, output_saved_model_dir, save_gpu_specific_engines=True):
        """Writes the converted SavedModel (load it with ``kiln.load``)."""
        self._native.save(os.fspath(output_saved_model_dir), save_gpu_specific_engines)

    def save_kiln_file(self, path, save_gpu_specific_engines=True):
        """Writes the converted model as one self-contained ``.kiln`` file."""
        self._native.save_kiln_file(os.fspath(path), save_gpu_specific_engines)

    def summary(self, line_length=160, detailed=True):
        """TF-TRT's engine table plus the report of what was not converted and why (a str)."""
        return self._native.summary(line_length, detailed)

    def non_conversion_report_csv(self):
        return self._native.non_conversion_report_csv()

    @property
    def calibration_table(self):
        """The INT8 calibration table (JSON text) convert() computed or read; "" otherwise."""
        return self._native.calibration_table_json()


def _discard(line):
    pass


_FIELDS = {f.name for f in dataclasses.fields(ConversionParams)}
