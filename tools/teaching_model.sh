#!/usr/bin/env bash
# teaching_model.sh — retrains a shipped teaching model from nothing, bit for bit, and checks the result against
# its SHA256SUMS: zoo/signs-sd (`make teaching-model`) or, with FAMILY=sd3, zoo/signs-sd3 (`make teaching-model-sd3`).
#
#   [FAMILY=sd|sd3] tools/teaching_model.sh [WORK_DIR]   (default build/teaching; LOCUS=path/to/locus overrides the binary)
#
# Stages (each resumes from its own checkpoint, so after a kill just run it again):
#   1. data     two sign sets of 8,000 128x32 images: the 1,000-word list in three fonts, rotated (for the VAE,
#               which must draw any letters), and the model's 40-word vocabulary zoo/signs-sd/words.txt
#               (tools/teaching_words.sh) in two sans-serif bold fonts, upright and centred (--centered: the
#               captions do not say where the sign is, so its place is not left to chance), with the two
#               caption templates of zoo/signs-sd/templates.txt (for the denoiser)
#   2. skeleton sd:  model_index.json, scheduler, the CLIP BPE tokenizer and a random CLIP text encoder without
#                    transformer layers (zoo/configs/signs-text0.json: each row is LayerNorm(token + position))
#               sd3: StableDiffusion3Pipeline without T5: a FlowMatchEuler scheduler (shift 1), two CLIP
#                    tokenizers and two one-layer CLIPTextModelWithProjection encoders, embeddings std 1
#                    (zoo/configs/signs-sd3-text.json; SD3 reads their penultimate state: token + position)
#   3. vae      AutoencoderKL (zoo/configs/signs-vae.json), 400 steps of 8 — the same weights for both families;
#               sd3 writes shift_factor 0.0 (zoo/configs/signs-sd3-vae.json): diffusers' SD3 pipeline adds it
#   4. sd:  unet        UNet2DConditionModel (zoo/configs/signs-sd-unet.json: signs-unet-attn64.json with the
#                       default size 128x32) and the text encoder's embeddings and final LayerNorm
#                       (--train-text-encoder), $STEPS steps of 32 (default 4,000)
#      sd3: transformer SD3Transformer2DModel (zoo/configs/signs-sd3-transformer.json: 6 joint blocks, 4 heads x 32)
#                       and both encoders' embeddings, flow matching, $STEPS steps of 32 (default 4,000)
#      weights written as F16 (training runs in F32)
# Same bits for any ISA and thread count (docs/TRAINING.md); the wall times on 2 idle cores are in
# zoo/signs-sd*/TRAINING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
L=${LOCUS:-build/locus}
W=${1:-build/teaching}
FAMILY=${FAMILY:-sd}
STEPS=${STEPS:-${UNET_STEPS:-4000}}
case $FAMILY in
  sd)  MODEL=signs-sd ;;
  sd3) MODEL=signs-sd3 ;;
  *) echo "teaching_model.sh: FAMILY=$FAMILY: expected sd or sd3" >&2; exit 2 ;;
esac
# a dedicated long run: libgomp's threads spin between the many small ops of a step instead of locus's default
# of 1,000 spin rounds and then sleep (simd/dispatch.c): 7% faster on 2 idle cores, the same bits
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-active}
OUT=$W/$MODEL
mkdir -p "$W"
t0=$(date +%s)
stage() { echo "teaching-model ($MODEL): $* ($(( $(date +%s) - t0 )) s)"; }

stage "data"
rm -rf "$W/signs-1000" "$W/signs-40"   # seconds to regenerate, the same bytes every time
"$L" dataset signs --words zoo/words/words-1000.txt --n 8000 --size 128x32 --seed 0 -o "$W/signs-1000" --quiet
"$L" dataset signs --words zoo/signs-sd/words.txt --n 8000 --size 128x32 --seed 0 --fonts dejavu-sans-bold,liberation-sans-bold \
    --no-rotate --centered --templates zoo/signs-sd/templates.txt -o "$W/signs-40" --quiet

stage "skeleton"
if [ "$FAMILY" = sd ]; then
  "$L" train pipeline -o "$OUT" --text-config zoo/configs/signs-text0.json
else
  "$L" train pipeline --family sd3 -o "$OUT" --text-config zoo/configs/signs-sd3-text.json \
      --scheduler-config zoo/configs/signs-sd3-scheduler.json
fi

resume_flag() { [ -f "$OUT/train/$1.ckpt" ] && echo --resume || true; }

if [ ! -f "$OUT/vae/diffusion_pytorch_model.safetensors" ]; then
  stage "vae"
  VAE_CONFIG=zoo/configs/signs-vae.json
  [ "$FAMILY" = sd3 ] && VAE_CONFIG=zoo/configs/signs-sd3-vae.json
  "$L" train vae --data "$W/signs-1000" -o "$OUT" --config $VAE_CONFIG --steps 400 --batch-size 8 \
      --seed 0 $(resume_flag vae)
fi

if [ "$FAMILY" = sd ] && [ ! -f "$OUT/unet/diffusion_pytorch_model.safetensors" ]; then
  stage "unet"
  "$L" train unet --data "$W/signs-40" -o "$OUT" --config zoo/configs/signs-sd-unet.json --steps "$STEPS" \
      --batch-size 32 --lr 1e-3 --warmup 100 --cfg-dropout 0.1 --checkpoint-every 250 --seed 0 --train-text-encoder --fp16 \
      $(resume_flag unet)
fi
if [ "$FAMILY" = sd3 ] && [ ! -f "$OUT/transformer/diffusion_pytorch_model.safetensors" ]; then
  stage "transformer"
  "$L" train transformer --data "$W/signs-40" -o "$OUT" --config zoo/configs/signs-sd3-transformer.json --steps "$STEPS" \
      --batch-size 32 --lr 1e-3 --warmup 200 --cfg-dropout 0.1 --checkpoint-every 250 --seed 0 --train-text-encoder --fp16 \
      $(resume_flag transformer)
fi

if [ ! -f zoo/$MODEL/SHA256SUMS ]; then
  stage "done; no zoo/$MODEL/SHA256SUMS to check against yet (the model is not shipped yet): the hashes are"
  (cd "$OUT" && sha256sum */*.safetensors)
  exit 0
fi
stage "done; checking the weights against zoo/$MODEL/SHA256SUMS"
(cd "$OUT" && sha256sum -c "$OLDPWD/zoo/$MODEL/SHA256SUMS")
