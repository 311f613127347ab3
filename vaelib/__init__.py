"""vaelib: the shared code of the book *Learning compact representations of video*.

One module per concern (see ``../shared/DESIGN.md`` in the development tree):

- ``synthetic``   seeded activity videos with ground-truth events and simulated observers
- ``video``       decoding, resizing, the uint8 frame store and its frame index, clip windows
- ``annotations`` reading event-segmentation files; group boundary frequency; observer agreement
- ``models``      the MMD-VAE; ``voxen``: the 3D-convolution video autoencoder
- ``losses``      MMD kernels and estimators
- ``train``       config dataclasses, the training loop, checkpoints, run folders
- ``boundaries``  boundary signals, pixel baselines, comparison statistics
- ``codecs``      entropy coding of latents, classic codecs through ffmpeg, rate-distortion
- ``widgets``     latent sliders and frame scrubbers
- ``plots``       figures shared by chapters
- ``book``        runs the chapters in order through papermill
"""

__version__ = "0.1.0"
