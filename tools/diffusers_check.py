#!/usr/bin/env python3
"""diffusers_check.py — does diffusers load a pipeline folder locus wrote (`locus train`), and does it compute
what locus computes? (issue 11's interop point)

Loads the folder's denoiser (UNet2DConditionModel or SD3Transformer2DModel), VAE and scheduler with diffusers
v0.31.0's own from_pretrained (imported from a source tree as ../shared/peers/README.md sets up: PEERS,
DIFFUSERS_SRC, HF_HUB_SRC), reporting missing / unexpected weight keys; then samples one image with the
pipeline's denoising loop from random prompt embeddings (seeded; the text encoders and the pipeline classes
need `transformers`, which cannot be installed here, so the embeddings are given and the loop of
StableDiffusion(3)Pipeline.__call__ is written out: seeded noise, the scheduler's timesteps, CFG), and runs
`locus generate --prompt-embeds` on the same embeddings, seed, size, steps and guidance.  Prints the max |diff|
of the final latents and of the decoded images, and exits non-zero if a key is missing or unexpected or a
difference is above --tol.

    PEERS=../shared/peers DIFFUSERS_SRC=... HF_HUB_SRC=... /usr/bin/python3 tools/diffusers_check.py FOLDER \\
        [--width 128 --height 32 --steps 20 --guidance G --seed 0 --max-seq 256 --locus build/locus --tol 1e-3]
"""
import argparse, json, os, struct, subprocess, sys, tempfile

import numpy as np

peers = os.environ.get("PEERS", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers"))
sys.path.insert(0, peers)
import _env  # noqa: E402  (the peers' import set-up: diffusers from DIFFUSERS_SRC, shims)

_env.setup_imports()
import torch  # noqa: E402
import safetensors.torch  # noqa: E402,F401  (diffusers calls safetensors.torch.load_file; the shim does not import it itself)
import diffusers  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("--width", type=int, default=0)
ap.add_argument("--height", type=int, default=0)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--guidance", type=float, default=-1)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--max-seq", type=int, default=256)
ap.add_argument("--locus", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "locus"))
ap.add_argument("--tol", type=float, default=1e-3)
a = ap.parse_args()
torch.set_num_threads(2)

mi = json.load(open(os.path.join(a.folder, "model_index.json")))
sd3 = mi["_class_name"] == "StableDiffusion3Pipeline"
den_name = "transformer" if sd3 else "unet"
bad = 0


def load(cls, sub):
    global bad
    if sub == "scheduler":
        return cls.from_pretrained(a.folder, subfolder=sub)
    m, info = cls.from_pretrained(a.folder, subfolder=sub, output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(k):
            print(f"{sub}: {k}: {info[k][:5]}{' ...' if len(info[k]) > 5 else ''}")
            bad += 1
    n = sum(p.numel() for p in m.parameters())
    print(f"{sub}: {cls.__name__}.from_pretrained loaded, {n} parameters, dtype {next(m.parameters()).dtype}")
    return m.float().eval()


den = load(getattr(diffusers, mi[den_name][1]), den_name)
vae = load(diffusers.AutoencoderKL, "vae")
sched = load(getattr(diffusers, mi["scheduler"][1]), "scheduler")

f = 2 ** (len(vae.config.block_out_channels) - 1)
ss = den.config.sample_size
sh, sw = (ss if isinstance(ss, int) else ss[0]), (ss if isinstance(ss, int) else ss[1])
W, H = a.width or sw * f, a.height or sh * f
g = torch.Generator().manual_seed(1234)
if sd3:
    # without text_encoder_3 the T5 block is 77 zero rows (tokenizer_max_length), whatever max_sequence_length is
    t5 = mi.get("text_encoder_3", [None])[0] is not None
    T, J, P = 77 + (a.max_seq if t5 else 77), den.config.joint_attention_dim, den.config.pooled_projection_dim
    emb = {k: torch.randn(1, T, J, generator=g) for k in ("cond", "uncond")}
    emb.update({k: torch.randn(1, P, generator=g) for k in ("cond_pooled", "uncond_pooled")})
    guidance = a.guidance if a.guidance >= 0 else 7.0
else:
    T, J = 77, den.config.cross_attention_dim
    emb = {k: torch.randn(1, T, J, generator=g) for k in ("cond", "uncond")}
    guidance = a.guidance if a.guidance >= 0 else 7.5
# The pipelines' denoising loop (StableDiffusion(3)Pipeline.__call__ with given embeddings; the pipeline classes
# themselves cannot be built without transformers): noise from the seeded generator (times init_noise_sigma),
# the scheduler's timesteps, the model on [uncond, cond], guidance in three ops, the scheduler step.
C = den.config.in_channels
with torch.no_grad():
    lat = torch.randn(1, C, H // f, W // f, generator=torch.Generator().manual_seed(a.seed))
    sched.set_timesteps(a.steps)
    if not sd3:
        lat = lat * sched.init_noise_sigma
    ctx = torch.cat([emb["uncond"], emb["cond"]])
    for t in sched.timesteps:
        x = torch.cat([lat] * 2)
        if sd3:
            out = den(hidden_states=x, timestep=t.expand(2), encoder_hidden_states=ctx,
                      pooled_projections=torch.cat([emb["uncond_pooled"], emb["cond_pooled"]]), return_dict=False)[0]
        else:
            out = den(sched.scale_model_input(x, t), t, encoder_hidden_states=ctx, return_dict=False)[0]
        un, co = out.chunk(2)
        pred = un + guidance * (co - un)
        lat = sched.step(pred, t, lat, return_dict=False)[0]
    z = lat / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    img = vae.decode(z, return_dict=False)[0]

tmp = tempfile.mkdtemp(prefix="diffusers_check_")
ef, df = os.path.join(tmp, "embeds.safetensors"), os.path.join(tmp, "dump.safetensors")
_env.write_safetensors(ef, [(k, v.numpy()) for k, v in emb.items()])
cmd = [a.locus, "generate", "--model", a.folder, "--prompt-embeds", ef, "--width", str(W), "--height", str(H), "--steps", str(a.steps),
       "--guidance", str(guidance), "--seed", str(a.seed), "-o", os.path.join(tmp, "locus.png"), "--dump", df]
r = subprocess.run(cmd, capture_output=True, text=True)
if r.returncode:
    sys.exit(f"locus generate failed: {r.stderr.strip().splitlines()[-1:]}")


def read_st(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        h = json.loads(fh.read(n))
        base, out = 8 + n, {}
        for k, m in h.items():
            if k == "__metadata__":
                continue
            fh.seek(base + m["data_offsets"][0])
            out[k] = np.frombuffer(fh.read(m["data_offsets"][1] - m["data_offsets"][0]), dtype=np.float32).reshape(m["shape"])
        return out


d = read_st(df)
dl = float(np.abs(d["final_latent"] - lat.numpy()).max())
di = float(np.abs(d["image"] - img.numpy()).max())
print(f"{mi['_class_name']} {W}x{H}, {a.steps} steps, guidance {guidance}, seed {a.seed}: locus vs diffusers max|diff| "
      f"final latent {dl:.3g} (max|latent| {float(np.abs(lat.numpy()).max()):.3g}), decoded image {di:.3g}")
sys.exit(1 if bad or not (dl <= a.tol and di <= a.tol) else 0)
