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
# # Chapter 2 · An MMD-VAE: every frame as a point in a small space
#
# We train an autoencoder that squeezes each 64 x 64 frame into a code of a few numbers, `z`, and
# rebuilds the frame from it. Alone, an autoencoder may scatter its codes anywhere; the **MMD-VAE**
# (InfoVAE, Zhao et al. 2017) adds one term that makes the codes of *all* frames together look like
# samples of a standard normal distribution N(0, I):
#
# $$\text{loss} = \underbrace{\tfrac{1}{n}\textstyle\sum (x - \hat x)^2}_{\text{reconstruction}}
#   \;+\; \lambda \cdot \mathrm{MMD}^2\big(\{z_i\},\ \{\varepsilon_j \sim N(0, I)\}\big)$$
#
# The maximum mean discrepancy compares two samples through a kernel k:
# MMD² = mean k(z, z') + mean k(ε, ε') − 2 mean k(z, ε). It is zero when the two samples come from
# one distribution and grows as they drift apart, so minimising it pulls the cloud of codes toward
# N(0, I): a space with no holes, where nearby codes decode to similar frames and where we can walk
# (chapter 3 follows the path a movie traces through it). `vaelib/losses.py` has the details; its
# tests check the sign and the scale that public implementations have got wrong.
#
# The chapter trains the model, looks at what it learnt, writes one code per frame for chapter 3,
# and lets you move through the latent space with sliders.

# %% tags=["parameters"]
data_dir = "data"             # reads data_dir/frames (chapter 1), writes data_dir/mmd_vae
figures_dir = "figures"
run_dir = ""                  # where the model run and the codes go ("": data_dir/mmd_vae)
metrics_path = ""             # the chapter's metrics as JSON ("": run_dir/metrics.json), e.g. for sweeps
# model
preset = "default"            # "default" (~4.5 M parameters, fine on a CPU) or "original" (~314 M)
z_dim = 16                    # None: the preset's own (16 for default, 100 for original)
# loss: reconstruction + mmd_weight * MMD^2(codes, N(0, I))
mmd_weight = 1.0
kernel = "rbf"                # "rbf" (exp(-|x-y|^2 / D^2), the reference) or "imq"
kernel_scales = [1.0]         # bandwidth multipliers, summed (e.g. [0.2, 0.5, 1, 2, 5])
unbiased = False              # the unbiased MMD estimator (diagonal terms removed)
# training
steps = 2000
batch_size = 32
lr = 1e-3
seed = 0
device = "auto"               # "auto": CUDA, then MPS, then CPU
val_split = "time"            # hold out contiguous time blocks of every movie ("time") or whole movies ("movie")
val_fraction = 0.2
resume = True                 # continue a run found in run_dir/run with the same settings
threads = 0                   # CPU threads for torch and OpenCV (0: the cores other jobs leave idle)

# %%
from vaelib.parameters import check_chapter_parameters

check_chapter_parameters("02_mmd_vae", globals())   # every parameter above: its name, type and values

# %%

import numpy as np
from IPython.display import display

from vaelib import plots, widgets
from vaelib.chapter import output_dir, use_threads, write_metrics
from vaelib.data import split_frames
from vaelib.framestore import load_frames
from vaelib.losses import MMDLossConfig
from vaelib.metrics import psnr, ssim
from vaelib.mmdvae import (
    MMDVAEConfig,
    decode,
    embed,
    n_parameters,
    reconstruct,
    sample_prior,
)
from vaelib.mmdvae_train import train_mmdvae
from vaelib.paths import resolve, save_npy
from vaelib.train import TrainConfig, read_metrics

use_threads(threads)
out_dir = output_dir(run_dir, resolve(data_dir) / "mmd_vae")
fs = load_frames(resolve(data_dir) / "frames")
print(f"{len(fs)} frames of {fs.size}x{fs.size} from {len(fs.movies)} movies: {', '.join(fs.movies)}")

# %% [markdown]
# ## 1 · Held-out frames that are really held out
#
# Neighbouring frames of a movie are nearly identical, so a random split of frames would put the
# twin of every validation frame in the training set and report flattering numbers. We hold out
# whole **contiguous blocks of time** in every movie (or whole movies, `val_split = "movie"`), and
# drop the training frames within a second of a held-out block.

# %%
split = split_frames(fs.index, how=val_split, val_fraction=val_fraction)
print(f"train {len(split.train)} frames, validation {len(split.val)} frames "
      f"({len(fs) - len(split.train) - len(split.val)} dropped at the block edges)")

# %% [markdown]
# ## 2 · Model and training
#
# A DCGAN-style encoder (three stride-2 convolutions, a fully connected layer, then `z`) and a mirrored
# decoder ending in a sigmoid. The trainer (`vaelib/train.py`) is a plain PyTorch loop: seeded, with a
# checkpoint every few hundred steps in a self-describing run folder; run this cell again and it picks
# up where it stopped, ending with the very same weights as an uninterrupted run.

# %%
model_cfg = MMDVAEConfig.from_preset(preset, z_dim=z_dim, image_size=fs.size)
loss_cfg = MMDLossConfig(mmd_weight=mmd_weight, kernel=kernel, scales=tuple(kernel_scales), unbiased=unbiased)
train_cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device,
                        val_every=max(1, steps // 10), checkpoint_every=max(1, steps // 10))
model, result = train_mmdvae(fs, split, out_dir / "run", model_cfg, loss_cfg, train_cfg, resume=resume)
print(f"{preset} preset: {n_parameters(model) / 1e6:.2f} M parameters, z_dim {model_cfg.z_dim}")
print(f"{result.step} steps in {result.seconds:.0f} s on {next(model.parameters()).device}; validation:",
      {k: round(v, 4) for k, v in result.last_val.items()})

# %% [markdown]
# ## 3 · Curves
#
# The reconstruction error falls steadily; the MMD term drops fast at the start, when the codes are
# pulled from wherever the random initial encoder put them into the prior's neighbourhood, and then
# hovers near the level two samples of one distribution would give (the biased estimator never
# reaches 0: with n codes against n prior samples its floor is about 2(1 - k̄)/n for the typical kernel
# value k̄). Dots: held-out frames; their MMD is measured on more frames at once, so its floor is lower.

# %%
fig = plots.loss_curves(read_metrics(result.run_dir), ["loss", "recon", "mmd"])
plots.save_figure(fig, figures_dir, "02_loss_curves.png")

# %% [markdown]
# ## 4 · What the decoder makes of the prior, and of held-out frames
#
# Left: frames decoded from fresh samples z ~ N(0, I). If the codes really fill the prior, these
# look like plausible frames, not noise: that is what the MMD term buys. Right: held-out frames
# (odd rows) and their reconstructions (even rows); a 16-number code keeps the scene, the actor's
# place and posture, and loses fine detail.

# %%
fig = plots.image_figure(sample_prior(model, 32, seed=seed), 8, "decoded samples of the prior N(0, I)")
plots.save_figure(fig, figures_dir, "02_prior_samples.png")
show = split.val[np.linspace(0, len(split.val) - 1, 16).astype(int)]
fig = plots.originals_and_reconstructions(fs.frames[show], reconstruct(model, fs.frames[show], progress=False))
plots.save_figure(fig, figures_dir, "02_reconstructions.png")

# %% [markdown]
# ## 5 · One code per frame
#
# Now every frame of every movie goes through the encoder, in batches and without gradients
# (`torch.inference_mode()`); the original project embedded one frame at a time with gradients on.
# The codes `embeddings.npy` (float32, one row per frame, in the frame index's order) and the model
# in `run/` are what chapter 3 reads: it decodes the codes of the movie it shows, so no copy of every
# frame's reconstruction is stored (at 64 x 64 that would be 12 KB a frame, against 64 bytes a code).
# Held-out PSNR and SSIM, of the codes decoded (the encoder runs once per frame), go to `metrics.json`.

# %%
Z = embed(model, fs.frames)
R = decode(model, Z)  # the same frames as reconstruct(model, fs.frames), without encoding them twice
save_npy(out_dir / "embeddings.npy", Z)
metrics = {"preset": preset, "z_dim": model_cfg.z_dim, "n_parameters": n_parameters(model), "kernel": kernel,
           "mmd_weight": mmd_weight, "steps": result.step, "train_seconds": round(result.seconds, 1),
           "val_psnr": float(psnr(fs.frames[split.val], R[split.val])),
           "val_ssim": float(ssim(fs.frames[split.val], R[split.val])),
           "train_psnr": float(psnr(fs.frames[split.train], R[split.train])),
           "code_mean_norm": float(np.linalg.norm(Z.mean(0))),
           "code_cov_gap": float(np.linalg.norm(np.cov(Z.T) - np.eye(Z.shape[1])) / Z.shape[1])}
write_metrics(metrics, metrics_path, out_dir)
metrics

# %% [markdown]
# `code_mean_norm` and `code_cov_gap` measure how close the cloud of all codes is to N(0, I): the
# length of its mean, and the distance of its covariance from the identity (per dimension). With
# `mmd_weight = 0` both grow; try it.
#
# ## 6 · Walking the latent space
#
# Pick a frame; its code is the starting point. Each slider moves the code along one latent axis
# (or, when `z_dim` is large, one of the leading principal directions of all the codes), in units of
# the codes' own spread along it, and the decoder redraws the frame live. Below the widget, the same
# thing as a static figure: each row moves along one direction from −2 to +2 spreads.

# %%
start = int(split.val[len(split.val) // 2])
display(widgets.latent_sliders(model, Z, fs.frames, start=start))
directions, spreads, names = widgets.latent_directions(Z, max_dims=8)
fig = plots.image_figure(widgets.latent_traversal(model, Z[start], directions, spreads), 5,
                         f"frame {start}: rows {', '.join(names)}; columns -2 .. +2 spreads")
plots.save_figure(fig, figures_dir, "02_latent_traversal.png")

# %% [markdown]
# ## 7 · Between two frames
#
# A straight line between the codes of two frames (here: the first frame of the first movie and the
# last of the last), decoded at evenly spaced points. Every point on the way decodes to a whole
# scene, wall colour and picture changing step by step; the middle frames are the least sharp,
# because few training frames lie between two stations and the decoder has seen little there.

# %%
a, b = fs.movie_rows(fs.movies[0]).start, fs.movie_rows(fs.movies[-1]).stop - 1
display(widgets.interpolation_widget(model, fs.frames, Z, a, b, n=8))
strip = np.concatenate([fs.frames[a][None], widgets.interpolation_strip(model, Z[a], Z[b], 8), fs.frames[b][None]])
fig = plots.image_figure(strip, len(strip), f"frame {a} → frame {b}: original, 8 decoded steps, original")
plots.save_figure(fig, figures_dir, "02_interpolation.png")
