"""_lib.py — finds liblocus.so and declares the C API of include/locus.h for ctypes.

Search order for the library: $LOCUS_LIB (the file, or a folder holding liblocus.so.0), a copy next to this
package, then build/ or lib/ in the folders above the package (the source tree's build/; an installed prefix's
lib/, up to five levels up), then the system loader (liblocus.so.0 on the library path).  The declarations below mirror include/locus.h one for one; the
struct layouts are the header's (fields are only ever appended there).
"""
import ctypes
import ctypes.util
import os

SONAME = "liblocus.so.0"

c_int, c_char_p, c_void_p, c_double, c_size_t = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_size_t
c_uint64, c_int64, c_float = ctypes.c_uint64, ctypes.c_int64, ctypes.c_float


class ModelInfo(ctypes.Structure):
    _fields_ = [("family", c_char_p), ("pipeline_class", c_char_p), ("denoiser_class", c_char_p), ("scheduler_class", c_char_p),
                ("width", c_int), ("height", c_int), ("latent_channels", c_int), ("vae_factor", c_int), ("size_multiple", c_int),
                ("ctx_dim", c_int), ("pooled_dim", c_int), ("text_tokens", c_int), ("n_layers", c_int), ("n_text_layers", c_int),
                ("denoiser_params", c_uint64), ("text_params", c_uint64), ("default_guidance", c_float), ("default_steps", c_int),
                ("model_hash", c_uint64)]


class LayerDesc(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("kind", c_char_p), ("site", c_char_p), ("index", c_int), ("heads", c_int),
                ("text_index", c_int), ("text_params", c_uint64), ("share_percent", c_double)]


PROGRESS_CB = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_int)

# name: (restype, argtypes)
_DECLS = {
    "locus_version": (c_char_p, []),
    "locus_last_error": (c_char_p, []),
    "locus_set_isa": (c_int, [c_char_p]),
    "locus_get_isa": (c_char_p, []),
    "locus_set_num_threads": (c_int, [c_int]),
    "locus_num_threads": (c_int, []),
    "locus_model_open": (c_int, [c_char_p, ctypes.POINTER(c_void_p)]),
    "locus_model_close": (None, [c_void_p]),
    "locus_model_get_info": (c_int, [c_void_p, ctypes.POINTER(ModelInfo), c_size_t]),
    "locus_model_layer_count": (c_int, [c_void_p]),
    "locus_model_layer": (c_int, [c_void_p, c_int, ctypes.POINTER(LayerDesc), c_size_t]),
    "locus_model_add_lora": (c_int, [c_void_p, c_char_p, c_float]),
    "locus_model_encode": (c_int, [c_void_p, c_char_p, c_int, ctypes.POINTER(c_void_p)]),
    "locus_genopts_new": (c_void_p, []),
    "locus_genopts_free": (None, [c_void_p]),
    "locus_genopts_set_prompt": (c_int, [c_void_p, c_char_p]),
    "locus_genopts_set_negative_prompt": (c_int, [c_void_p, c_char_p]),
    "locus_genopts_set_seed": (c_int, [c_void_p, c_uint64]),
    "locus_genopts_set_steps": (c_int, [c_void_p, c_int]),
    "locus_genopts_set_guidance": (c_int, [c_void_p, c_double]),
    "locus_genopts_set_size": (c_int, [c_void_p, c_int, c_int]),
    "locus_genopts_set_size_cond": (c_int, [c_void_p, ctypes.POINTER(c_int), ctypes.POINTER(c_int), ctypes.POINTER(c_int)]),
    "locus_genopts_set_sampler": (c_int, [c_void_p, c_char_p]),
    "locus_genopts_set_max_sequence_length": (c_int, [c_void_p, c_int]),
    "locus_genopts_set_clip_skip": (c_int, [c_void_p, c_int]),
    "locus_genopts_set_quantize_trunc": (c_int, [c_void_p, c_int]),
    "locus_genopts_add_cache": (c_int, [c_void_p, c_char_p]),
    "locus_genopts_set_patch": (c_int, [c_void_p, c_char_p, c_char_p, c_int, c_int]),
    "locus_genopts_set_intervene": (c_int, [c_void_p, c_char_p, c_char_p, c_int, c_char_p, c_char_p]),
    "locus_genopts_set_dump": (c_int, [c_void_p, c_int]),
    "locus_genopts_set_noise_file": (c_int, [c_void_p, c_char_p]),
    "locus_genopts_set_progress": (c_int, [c_void_p, PROGRESS_CB, c_void_p]),
    "locus_genopts_set_prompt_embeds": (c_int, [c_void_p, c_int, c_int, c_void_p, c_void_p, c_int, c_void_p, c_void_p]),
    "locus_model_generate": (c_int, [c_void_p, c_void_p, ctypes.POINTER(c_void_p)]),
    "locus_result_image": (c_int, [c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)), ctypes.POINTER(c_int), ctypes.POINTER(c_int)]),
    "locus_result_count": (c_int, [c_void_p]),
    "locus_result_tensor": (c_int, [c_void_p, c_int, ctypes.POINTER(c_char_p), ctypes.POINTER(c_int), ctypes.POINTER(ctypes.POINTER(c_int64)),
                                    ctypes.POINTER(ctypes.POINTER(c_float))]),
    "locus_result_find": (c_int, [c_void_p, c_char_p]),
    "locus_result_free": (None, [c_void_p]),
}


def _candidates():
    env = os.environ.get("LOCUS_LIB")
    if env:
        yield os.path.join(env, SONAME) if os.path.isdir(env) else env
        return  # an explicit choice is the only one tried
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, SONAME)
    yield os.path.join(here, "liblocus.so")
    # the source tree (python/locus -> build/), then an installed prefix's lib/ above the package
    # (PREFIX/lib/python3/dist-packages/locus, PREFIX/share/locus/python/locus, ...)
    up = here
    for _ in range(5):
        up = os.path.dirname(up)
        if up == os.path.dirname(up):
            break
        yield os.path.join(up, "build", SONAME)
        yield os.path.join(up, "lib", SONAME)
    yield SONAME  # the system loader's search path
    found = ctypes.util.find_library("locus")
    if found:
        yield found


def load():
    """Load liblocus.so (see the module docstring for where it is looked for) and declare its functions."""
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        for name, (res, args) in _DECLS.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        lib._locus_path = path
        return lib
    raise OSError("liblocus.so not found; build it with `make` or set LOCUS_LIB (tried: %s)" % ", ".join(tried))
