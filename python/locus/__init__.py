"""locus — text-to-image diffusion on the CPU, bit for bit reproducible, for interpretability work in notebooks.

Pure Python over ctypes + numpy, on liblocus.so's stable C API (include/locus.h; docs/API.md).  Results are
the bits `locus generate` writes for the same inputs.

    import locus
    m = locus.Model("tests/golden/pipelines/sd15-tiny")
    r = m.generate('A sign that says "HELLO".', seed=42, steps=4, cache=["*.attn2.probs"],
                   patch=dict(prompt='A sign that says "WORLD".', layers=["up_blocks.1"], start_step=0))
    r.image            # numpy uint8 [H, W, 3]
    r.cache            # {"step0.down_blocks.0....attn2.probs": float32 [2, heads, Tq, Tk], ...}
    m.layers()         # [{"index": 0, "paper": None, "kind": "self", "name": ..., "text_params": ...}, ...]
    rows = locus.localize(m, words=["HELLO", "WORLD", "STOP"], seeds=[0], steps=4)   # `locus localize` rows

Memory: r.image and the arrays in r.cache / r.dump / r.tensors are zero-copy views of the C result; it is
freed when the Result and every array taken from it are gone (each array keeps it alive).  Arrays are
writable; writing changes only that result's copy.

Errors: every failure raises locus.LocusError (a RuntimeError) with the library's one-line message and its
status code (.code: "arg", "io", ...).  The library is found via $LOCUS_LIB, next to this package, or the
source tree's build/ (see _lib.py); the CLI (for localize) via $LOCUS_BIN, next to the library, or PATH.
"""
import ctypes
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

import numpy as np

from . import _lib

__all__ = ["Model", "Result", "LocusError", "localize", "version", "set_isa", "get_isa", "set_threads", "get_threads",
           "read_safetensors", "write_safetensors", "png_bytes", "library_path"]

_L = _lib.load()

_STATUS = ["ok", "io", "format", "dtype", "shape", "notfound", "arg", "nomem", "unsupported"]


class LocusError(RuntimeError):
    """A failed library call: str(e) is the library's message, e.code its status name ("arg", "io", ...)."""

    def __init__(self, status, message):
        self.status = status
        self.code = _STATUS[status] if 0 <= status < len(_STATUS) else str(status)
        super().__init__(message)


def _err(status):
    return LocusError(status, (_L.locus_last_error() or b"").decode("utf-8", "replace") or "error %d" % status)


def _check(status):
    if status:
        raise _err(status)


def _b(s):
    return None if s is None else (s if isinstance(s, bytes) else str(s).encode("utf-8"))


def _s(b):
    return None if b is None else b.decode("utf-8", "replace")


def version():
    """The library version ("0.1.0")."""
    return _s(_L.locus_version())


def library_path():
    """The liblocus.so this module loaded."""
    return _L._locus_path


def set_isa(name=None):
    """Kernel table: "scalar", "avx2", "avx512", "neon", or None for the best (LOCUS_ISA honoured).  Same bits either way."""
    _check(_L.locus_set_isa(_b(name)))


def get_isa():
    return _s(_L.locus_get_isa())


def set_threads(n):
    """Worker threads for later calls (outputs do not depend on it)."""
    _check(_L.locus_set_num_threads(int(n)))


def get_threads():
    return _L.locus_num_threads()


class _View:
    """Exposes memory owned by a C result to numpy; the array's .base keeps this (and so the result) alive."""

    def __init__(self, owner, addr, shape, typestr):
        self._owner = owner
        self.__array_interface__ = {"version": 3, "data": (addr, False), "shape": tuple(shape), "typestr": typestr}


class _Handle:
    """Owns one locus_result; freed when nothing refers to it any more."""

    def __init__(self, ptr):
        self.ptr = ptr

    def __del__(self):
        if self.ptr and _L is not None:
            _L.locus_result_free(self.ptr)
            self.ptr = None


_DUMP = re.compile(r"^(step\d+\.(noise_pred_uncond|noise_pred_text|noise_pred|latent_out)|final_latent|image)$")


class Result:
    """One generation: .image (uint8 [H,W,3] or None), .cache (hook points "step<N>.<name>" as --cache names
    them), .dump (the --dump tensors when asked for), .tensors (all, in the order produced)."""

    def __init__(self, ptr, dumped=False):
        h = _Handle(ptr)
        self.image = None
        rgb, H, W = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_int(), ctypes.c_int()
        if _L.locus_result_image(ptr, ctypes.byref(rgb), ctypes.byref(H), ctypes.byref(W)) == 0:
            addr = ctypes.cast(rgb, ctypes.c_void_p).value
            self.image = np.asarray(_View(h, addr, (H.value, W.value, 3), "|u1"))
        self.tensors = {}
        name, nd = ctypes.c_char_p(), ctypes.c_int()
        shape, data = ctypes.POINTER(ctypes.c_int64)(), ctypes.POINTER(ctypes.c_float)()
        for i in range(_L.locus_result_count(ptr)):
            _check(_L.locus_result_tensor(ptr, i, ctypes.byref(name), ctypes.byref(nd), ctypes.byref(shape), ctypes.byref(data)))
            shp = tuple(shape[k] for k in range(nd.value))
            self.tensors[_s(name.value)] = np.asarray(_View(h, ctypes.cast(data, ctypes.c_void_p).value, shp, "<f4"))
        self.dump = {k: v for k, v in self.tensors.items() if dumped and _DUMP.match(k)}
        self.cache = {k: v for k, v in self.tensors.items() if k not in self.dump}

    def save(self, path):
        """Write the image as an 8-bit RGB PNG (no text chunks; the pixels are what `locus generate` writes)."""
        with open(path, "wb") as f:
            f.write(png_bytes(self.image))

    def _repr_png_(self):  # notebooks show the image
        return None if self.image is None else png_bytes(self.image)

    def __repr__(self):
        img = "x".join(map(str, self.image.shape)) if self.image is not None else "none"
        return "<locus.Result image %s, %d cached, %d dumped>" % (img, len(self.cache), len(self.dump))


def _join(v, sep=","):
    if v is None or isinstance(v, (str, bytes)):
        return v
    return sep.join(str(x) for x in v)


class Model:
    """A diffusers pipeline folder (SD1.x/2.x, SDXL, SD3/SD3.5, LDM) loaded once; generate() as often as wanted."""

    def __init__(self, path):
        self.path = os.fspath(path)
        p = ctypes.c_void_p()
        _check(_L.locus_model_open(_b(self.path), ctypes.byref(p)))
        self._p = p

    def close(self):
        """Free the weights now (otherwise when the Model is garbage-collected)."""
        if getattr(self, "_p", None) and self._p.value:
            _L.locus_model_close(self._p)
            self._p = ctypes.c_void_p()

    def __del__(self):
        if _L is not None:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ptr(self):
        if not self._p.value:
            raise LocusError(6, "the model is closed")
        return self._p

    @property
    def info(self):
        """Family, sizes and counts as a dict (locus_model_info)."""
        i = _lib.ModelInfo()
        _check(_L.locus_model_get_info(self._ptr(), ctypes.byref(i), ctypes.sizeof(i)))
        return {k: (_s(getattr(i, k)) if t is ctypes.c_char_p else getattr(i, k)) for k, t in i._fields_}

    def layers(self):
        """Every attention layer in forward order, as `locus layers --json` lists them (+ "site": what patching names)."""
        out = []
        for k in range(_L.locus_model_layer_count(self._ptr())):
            d = _lib.LayerDesc()
            _check(_L.locus_model_layer(self._p, k, ctypes.byref(d), ctypes.sizeof(d)))
            out.append({"index": d.index, "paper": d.text_index if d.text_index >= 0 else None, "kind": _s(d.kind), "name": _s(d.name),
                        "heads": d.heads, "text_params": d.text_params, "share_percent": d.share_percent, "site": _s(d.site)})
        return out

    def add_lora(self, path, scale=1.0):
        """Apply LoRA adapters (diffusers / PEFT / kohya file) to this model for the rest of its life, as
        `locus generate --lora FILE:SCALE` (they cannot be removed: open the folder again for the plain model)."""
        _check(_L.locus_model_add_lora(self._ptr(), _b(os.fspath(path)), float(scale)))

    def encode(self, prompt, max_sequence_length=None):
        """The prompt's conditioning: {"cond": [1,T,ctx_dim]} (+ "cond_pooled" [1,P] for SDXL / SD3).  prompt None:
        no prompt (zeros where the pipeline says so)."""
        r = ctypes.c_void_p()
        _check(_L.locus_model_encode(self._ptr(), _b(prompt), int(max_sequence_length or 0), ctypes.byref(r)))
        return Result(r.value).tensors

    def generate(self, prompt=None, negative_prompt=None, seed=0, steps=None, guidance=None, width=None, height=None, sampler=None,
                 max_sequence_length=None, clip_skip=0, cache=None, patch=None, intervene=None, dump=False, noise=None,
                 prompt_embeds=None, original_size=None, crops_coords_top_left=None, target_size=None, quantize="round", progress=None):
        """One generation, the bits `locus generate` writes for the same options.

        cache: glob pattern(s) of hook points ("*.attn2.probs", "mid_block"), a string or a list.
        patch: dict(prompt=B, layers="up_blocks.1" or a list, start_step=0, halves="cond"|"both").
        intervene: "PATTERN=zero|scale:F|mean|replace:CACHE" (';'-joined or a list), or a dict(spec=..., steps="FROM:TO",
                   heads=N, head_list=[...], half="cond"|"uncond"|"both").
        dump: keep what --dump writes (every step's predictions and latent, final_latent, image) in .dump.
        noise: a safetensors file with tensor "noise" [1,C,h,w] instead of the seed.
        prompt_embeds: instead of prompt strings, dict(cond=[1,T,D], uncond=[1,T,D] (needed with guidance > 1),
                   cond_pooled=[1,P], uncond_pooled=[1,P] (models with pooled text)), e.g. from encode().
        original_size, crops_coords_top_left, target_size: SDXL's size conditioning, (H, W) / (top, left) pairs.
        quantize: "round" (diffusers' PIL) or "trunc" (the paper's scripts).  progress: callable(step, nsteps).
        """
        o = _L.locus_genopts_new()
        if not o:
            raise MemoryError("locus_genopts_new")
        try:
            if prompt is not None:
                _check(_L.locus_genopts_set_prompt(o, _b(prompt)))
            keep = []  # the arrays handed to C stay alive until it has copied them
            if prompt_embeds is not None:
                unknown = set(prompt_embeds) - {"cond", "uncond", "cond_pooled", "uncond_pooled"}
                if unknown or "cond" not in prompt_embeds:
                    raise LocusError(6, "prompt_embeds: expected dict(cond=, uncond=, cond_pooled=, uncond_pooled=); got keys %s" % sorted(prompt_embeds))
                arr = {k: None if v is None else np.ascontiguousarray(v, dtype=np.float32) for k, v in prompt_embeds.items()}
                cond = arr["cond"].reshape(-1, arr["cond"].shape[-1])
                T, D = cond.shape
                P = arr["cond_pooled"].size if arr.get("cond_pooled") is not None else 0
                for k, n in (("uncond", T * D), ("cond_pooled", P), ("uncond_pooled", P)):
                    if arr.get(k) is not None and arr[k].size != n:
                        raise LocusError(4, "prompt_embeds %s: %d values, expected %d" % (k, arr[k].size, n))
                ptr = lambda k: None if arr.get(k) is None else arr[k].ctypes.data
                keep.append(arr)
                _check(_L.locus_genopts_set_prompt_embeds(o, T, D, ptr("cond"), ptr("uncond"), P, ptr("cond_pooled"), ptr("uncond_pooled")))
            _check(_L.locus_genopts_set_negative_prompt(o, _b(negative_prompt)))
            _check(_L.locus_genopts_set_seed(o, int(seed)))
            if steps is not None:
                _check(_L.locus_genopts_set_steps(o, int(steps)))
            if guidance is not None:
                _check(_L.locus_genopts_set_guidance(o, float(guidance)))
            if width is not None or height is not None:
                _check(_L.locus_genopts_set_size(o, int(width or 0), int(height or 0)))
            if original_size is not None or crops_coords_top_left is not None or target_size is not None:
                pair = lambda v: None if v is None else (ctypes.c_int * 2)(*[int(x) for x in v])
                _check(_L.locus_genopts_set_size_cond(o, pair(original_size), pair(crops_coords_top_left), pair(target_size)))
            if sampler is not None:
                _check(_L.locus_genopts_set_sampler(o, _b(sampler)))
            if max_sequence_length is not None:
                _check(_L.locus_genopts_set_max_sequence_length(o, int(max_sequence_length)))
            _check(_L.locus_genopts_set_clip_skip(o, int(clip_skip)))
            if quantize not in ("round", "trunc"):
                raise LocusError(6, "quantize %r: expected 'round' or 'trunc'" % (quantize,))
            _check(_L.locus_genopts_set_quantize_trunc(o, quantize == "trunc"))
            for pat in ([cache] if isinstance(cache, str) else cache or []):
                _check(_L.locus_genopts_add_cache(o, _b(pat)))
            if patch is not None:
                unknown = set(patch) - {"prompt", "layers", "start_step", "halves"}
                if unknown or "prompt" not in patch or "layers" not in patch:
                    raise LocusError(6, "patch: expected dict(prompt=..., layers=..., start_step=0, halves='cond'); got keys %s" % sorted(patch))
                halves = patch.get("halves", "cond")
                if halves not in ("cond", "both"):
                    raise LocusError(6, "patch halves %r: expected 'cond' or 'both'" % (halves,))
                _check(_L.locus_genopts_set_patch(o, _b(patch["prompt"]), _b(_join(patch["layers"])), int(patch.get("start_step", 0)),
                                                  halves == "both"))
            if intervene is not None:
                iv = intervene if isinstance(intervene, dict) else {"spec": intervene}
                unknown = set(iv) - {"spec", "steps", "heads", "head_list", "half"}
                if unknown or "spec" not in iv:
                    raise LocusError(6, "intervene: expected a spec string or dict(spec=..., steps=, heads=, head_list=, half=); got keys %s" % sorted(iv))
                steps_s = iv.get("steps")
                if isinstance(steps_s, (tuple, list)):
                    steps_s = "%d:%d" % tuple(steps_s)
                _check(_L.locus_genopts_set_intervene(o, _b(_join(iv["spec"], ";")), _b(steps_s), int(iv.get("heads") or 0),
                                                      _b(_join(iv.get("head_list"))), _b(iv.get("half"))))
            _check(_L.locus_genopts_set_dump(o, bool(dump)))
            if noise is not None:
                _check(_L.locus_genopts_set_noise_file(o, _b(os.fspath(noise))))
            cb = None
            if progress is not None:
                cb = _lib.PROGRESS_CB(lambda ctx, step, n: progress(step, n))
                _check(_L.locus_genopts_set_progress(o, cb, None))
            r = ctypes.c_void_p()
            _check(_L.locus_model_generate(self._ptr(), o, ctypes.byref(r)))
            return Result(r.value, dumped=bool(dump))
        finally:
            _L.locus_genopts_free(o)


# ---- safetensors files (what --cache, --dump, --prompt-embeds use), read with numpy alone ----

_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": None, "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    """{name: numpy array} of a safetensors file (BF16 widened to float32), plus "__metadata__" when present."""
    with open(path, "rb") as f:
        buf = f.read()
    n = int.from_bytes(buf[:8], "little")
    header = json.loads(buf[8:8 + n])
    base, out = 8 + n, {}
    for name, t in header.items():
        if name == "__metadata__":
            out[name] = t
            continue
        a, b = t["data_offsets"]
        raw = buf[base + a:base + b]
        if t["dtype"] == "BF16":
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, _DTYPES[t["dtype"]])
        out[name] = arr.reshape(t["shape"])
    return out


def write_safetensors(path, tensors, metadata=None):
    """Write {name: array} as a safetensors file of float32 tensors (e.g. a Result's .cache, as the source of an
    intervention "PATTERN=replace:FILE": activation patching from a run made in this notebook)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)  # the data region 8-byte aligned, as locus writes it
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h)
        for b in blobs:
            f.write(b)


def png_bytes(image):
    """uint8 [H,W,3] -> PNG file bytes (8-bit RGB, no filtering)."""
    a = np.ascontiguousarray(image, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError("png_bytes: expected uint8 [H, W, 3], got %s" % (a.shape,))
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


# ---- the localization sweep, through the CLI ----

def _cli():
    env = os.environ.get("LOCUS_BIN")
    if env:
        return env
    libdir = os.path.dirname(os.path.realpath(library_path())) if os.sep in library_path() else ""
    for c in (os.path.join(libdir, "locus"), os.path.join(libdir, "..", "bin", "locus")):
        if libdir and os.access(c, os.X_OK):
            return os.path.normpath(c)
    found = shutil.which("locus")
    if found:
        return found
    raise LocusError(5, "the locus CLI was not found (set LOCUS_BIN, or put locus on PATH)")


class LocalizeRows(list):
    """The rows of results.jsonl (one dict per cell), with .dir (the results folder), .summary (summary.json's
    per-layer rows) and .config (config.json)."""


def localize(model, words=None, out=None, seeds=None, steps=None, layers=None, prompts=None, pairs=None, isa=None, threads=None,
             quiet=True, **options):
    """Run `locus localize` (the paper's sweep: each layer patched alone with prompt B's text) and return its rows.

    model: a Model or a folder.  words: a list of words (written to a file) or a file; prompts / pairs: files.
    out: the results folder (default: a new temporary folder, kept; see .dir).  seeds: "0-3", 3 or [0, 1].
    layers: "all", "up_blocks.1,mid_block" or a list (entries patched alone; "a+b" patched together).
    Other CLI options as keywords: guidance=7.5, start_step=1, template='...', preset='paper-sd3', resume=True ...
    (underscores become dashes; True gives a flag alone).  isa / threads: LOCUS_ISA / --threads for this run.
    """
    path = model.path if isinstance(model, Model) else os.fspath(model)
    out = out or tempfile.mkdtemp(prefix="locus-localize-")
    if out and os.path.isdir(out) and not os.listdir(out) and not options.get("resume"):
        os.rmdir(out)  # the CLI refuses an existing folder (it is made atomically)
    args = [_cli(), "localize", "--model", path, "-o", out]
    tmpdir = None
    if words is not None:
        if isinstance(words, (list, tuple)):
            tmpdir = tempfile.mkdtemp(prefix="locus-words-")
            wf = os.path.join(tmpdir, "words.txt")
            with open(wf, "w", encoding="utf-8") as f:
                f.write("".join("%s\n" % w for w in words))
            words = wf
        args += ["--words", os.fspath(words)]
    if prompts is not None:
        args += ["--prompts", os.fspath(prompts)]
    if pairs is not None:
        args += ["--pairs", os.fspath(pairs)]
    if seeds is not None:
        args += ["--seeds", _join([seeds] if isinstance(seeds, int) else seeds)]
    if steps is not None:
        args += ["--steps", str(steps)]
    if layers is not None:
        args += ["--layers", _join(layers)]
    if threads is not None:
        args += ["--threads", str(threads)]
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            args.append(flag)
        elif v is not False and v is not None:
            args += [flag, str(v)]
    env = dict(os.environ)
    if isa:
        env["LOCUS_ISA"] = isa
    try:
        p = subprocess.run(args, env=env, stdout=subprocess.PIPE if quiet else None, stderr=subprocess.PIPE, text=True)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if p.returncode != 0:
        lines = [l for l in (p.stderr or "").splitlines() if l.strip() and "\r" not in l]
        raise LocusError(6, lines[-1] if lines else "locus localize failed (exit %d)" % p.returncode)
    rows = LocalizeRows()
    with open(os.path.join(out, "results.jsonl"), encoding="utf-8") as f:
        rows.extend(json.loads(l) for l in f if l.strip())
    rows.dir = out
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        rows.summary = json.load(f).get("layers", [])
    with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
        rows.config = json.load(f)
    return rows
