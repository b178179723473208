"""unified-prompt's PaddlePaddle backend.

Importing this package is cheap: paddle and paddlenlp load only when a model is loaded
(`import paddlenlp` alone takes seconds), so `unified-prompt backends` stays fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
