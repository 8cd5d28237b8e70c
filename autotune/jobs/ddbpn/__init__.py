"""D-DBPN super-resolution job for autotune.

Objective entry points (engine contract ``f(params: dict, ctx) -> dict``):
``autotune.jobs.ddbpn.train:pretrain`` and ``autotune.jobs.ddbpn.train:finetune``.

Modules: ``model`` (DDBPN generator, Discriminator), ``vgg`` (VGG19 feature
stack + loader), ``losses`` (four-term objective), ``data`` (patches and
validation images; scikit-image images by default), ``imresize``
(MATLAB-style bicubic), ``niqe`` (NIQE), ``metrics`` (PSNR / SSIM / NIQE on Y),
``train`` (the entry points).
"""
__all__ = ["pretrain", "finetune", "DDBPN", "Discriminator"]


def __getattr__(name):  # lazy, so that importing the package stays cheap
    if name in ("pretrain", "finetune"):
        from . import train
        return getattr(train, name)
    if name in ("DDBPN", "Discriminator"):
        from . import model
        return getattr(model, name)
    raise AttributeError(name)
