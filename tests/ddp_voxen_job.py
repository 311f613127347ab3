"""``python -m vaelib.voxen_train`` on a tiny VoxEn and tiny movies, for tests/test_distributed.py (torchrun or plain).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_voxen_job.py WORK OUT [--config-ste]
        [voxen_train args]

The movies (random frames, 16x16) and the check clip stand in for the reference movies and the real clip, so a
run takes seconds; every export is logged to WORK/exports.log with the rank that wrote it.
"""
import sys
from pathlib import Path

import numpy as np

from vaelib import distributed, voxen_train

TINY = '{"clip_len": 8, "image_size": 16, "channels": [8, 4], "strides": [[4, 2, 2], [2, 2, 2]], "hyper_channels": 3}'


class Movies:
    """What the trainer needs of a FrameSet: frames and each movie's rows."""

    def __init__(self, lengths=(30, 24), size=16):
        rng = np.random.default_rng(0)
        self.frames = (rng.random((sum(lengths), size, size, 3)) * 255).astype(np.uint8)
        self.movies = [f"m{i}" for i in range(len(lengths))]
        ends = np.cumsum((0, *lengths))
        self.rows = {m: slice(int(a), int(b)) for m, a, b in zip(self.movies, ends[:-1], ends[1:])}

    def movie_rows(self, movie):
        return self.rows[movie]


def main() -> int:
    work, out, *rest = sys.argv[1:]
    config = TINY.replace("}", ', "quantization": "ste"}') if "--config-ste" in rest else TINY
    rest = [a for a in rest if a != "--config-ste"]
    made = Path(work) / "made.log"

    def reference_frames(_work):
        with made.open("a") as f:  # who made the movies (rank 0 alone should)
            f.write(f"{distributed.rank()}\n")
        return Movies()

    def export_model(run_dir, out_dir):
        with (Path(work) / "exports.log").open("a") as f:
            f.write(f"{distributed.rank()} {Path(out_dir).name}\n")
        return real_export(run_dir, out_dir)

    real_export = voxen_train.export_model
    voxen_train.reference_frames = reference_frames
    voxen_train.export_model = export_model
    voxen_train.check_clip = lambda config: Movies((config.clip_len,)).frames
    Path(work).mkdir(parents=True, exist_ok=True)
    return voxen_train.main(["--work", work, "--out", out, "--config", config, *rest])


if __name__ == "__main__":
    sys.exit(main())
