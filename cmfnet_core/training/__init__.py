"""Training CMFNet with a PyTorch twin (optional ``train`` extra, torch==2.13.0).

* ``twin``:     the network in PyTorch, official module/parameter names.
* ``synth``:    degradation synthesis (numpy/OpenCV only).
* ``train``:    the loop; ``cmfnet train`` calls ``train.add_arguments`` and
                ``train.run_from_args`` (or ``train.run_training``).
* ``evaluate``: PSNR/SSIM of input / classical method / model on paired data.

Nothing here is imported by the runtime package; torch is imported lazily.
"""
