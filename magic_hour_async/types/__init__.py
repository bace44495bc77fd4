"""``magic_hour_async.types``: the official SDK's import paths for request and response types.

- :mod:`magic_hour_async.types.params`: the request bodies as ``TypedDict`` classes, under the official SDK's
  names (``V1AiImageGeneratorCreateBody``, ``V1FaceSwapCreateBodyAssets``, ...);
- :mod:`magic_hour_async.types.models`: the response models under the official names
  (``V1VideoProjectsGetResponse`` is :class:`~magic_hour_async.VideoProject`, ...).

Both are generated (``tools/generate_api.py``) and load only when imported.
"""

from . import models, params

__all__ = ["models", "params"]
