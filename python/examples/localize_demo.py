#!/usr/bin/env python3
"""localize_demo.py — the README's localization experiment from Python: which attention layers decide the text
a diffusion model writes?  Every text-reading layer is patched alone with prompt B's text (the paper's
activation patching), each image is read by OCR and scored, and the sweep's heatmap (OCR-F1 against B's word
per layer and prompt) is written to OUT/heatmap.png, with the grid, bar chart and tables beside it.

    /usr/bin/python3 python/examples/localize_demo.py                       # the bundled tiny model (noise images)
    /usr/bin/python3 python/examples/localize_demo.py --model sd15 --steps 50 --out results

Needs liblocus.so and the locus CLI (`make`); run from anywhere (the module is found next to this script).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import locus  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "tests", "golden", "pipelines", "sd15-tiny"), help="pipeline folder (default: the tiny SD1.5-shaped model)")
    ap.add_argument("--words", default="HELLO,WORLD,COFFEE,OPEN,STOP", help="comma-separated words (default: the README's)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--layers", default="all", help="layers patched one at a time (default: every text-reading layer)")
    ap.add_argument("--out", default="localize_demo", help="results folder (must not exist yet)")
    a = ap.parse_args()

    m = locus.Model(a.model)
    info = m.info
    text = [l for l in m.layers() if l["paper"] is not None]
    print("%s (%s): %d attention layers, %d read the text with %d of %d parameters (%.3f%%)" % (
        a.model, info["family"], info["n_layers"], len(text), info["text_params"], info["denoiser_params"],
        100.0 * info["text_params"] / info["denoiser_params"]))

    rows = locus.localize(m, words=a.words.split(","), seeds=a.seeds, steps=a.steps, layers=a.layers, out=a.out)

    # the heatmap's numbers from the rows: OCR-F1 against B's word per layer (rows) and prompt (columns), the
    # paper's way: F1 of the mean precision and mean recall over the seeds
    layers = [s["layer"] for s in rows.summary]
    prompts = sorted({r["prompt"] for r in rows})
    pr = {}
    for r in rows:
        pr.setdefault((r["layer"], r["prompt"]), []).append((r["precision_b"], r["recall_b"]))

    def f1(cell):
        P = sum(x[0] for x in pr[cell]) / len(pr[cell])
        R = sum(x[1] for x in pr[cell]) / len(pr[cell])
        return 2 * P * R / (P + R + 1e-6)
    words = {r["prompt"]: r["word_a"] for r in rows}
    width = max(len(l) for l in layers)
    print("\nOCR-F1 against B's word (the paper's measure of how much of B's text a patched layer writes):")
    print("%-*s " % (width, "layer") + " ".join("%8.8s" % words[p] for p in prompts))
    for l in layers:
        print("%-*s " % (width, l) + " ".join("%8.3f" % f1((l, p)) for p in prompts))
    print("\n%d cells; heatmap: %s (grid.png, ocr_f1.png, summary.csv beside it)" % (len(rows), os.path.join(rows.dir, "heatmap.png")))


if __name__ == "__main__":
    main()
