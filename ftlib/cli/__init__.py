"""The command line for course projects: ``python -m ftlib finetune`` and ``predict``.

``finetune`` trains a torchvision classifier on a folder of images (one sub-folder per class)
in one of the three states, or in the state ``ftlib.recommend`` plans for the data; it holds
out a validation and a test split and writes a checkpoint, the history, the training curves
and a summary to one output folder. ``predict`` reads that checkpoint and labels new images.
Both run as they are under ``torchrun``.

- ``main``: the parser and what each command prints (the library itself prints nothing);
- ``splits``: the image folder divided into training, validation and test sets;
- ``images``: how an image file becomes the tensor a model takes;
- ``architecture``: the model built from its names, and rebuilt for its checkpoint;
- ``finetune``, ``outputs``, ``predict``: the two commands and the files they write.
"""
