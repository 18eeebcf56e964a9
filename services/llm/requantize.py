"""Re-quantize a GGUF model with llama.cpp's own quantizer, in a child process.

    python -m services.llm.requantize SOURCE.gguf TARGET.gguf q8_0

Run by ``LlamaCppEngine`` the first time it loads the shipped SmolLM2 (``LLM_SHIPPED_WEIGHTS``):
the Q4_1 file is copied once as Q8_0, which llama.cpp multiplies with its tiled matrix kernels
when it reads a prompt (Q4_1 has none on x86). A crash in native code stays out of the bot.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

FILE_TYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}


def requantize(source: Path, target: Path, kind: str) -> None:
    """Write ``source`` re-quantized to ``kind`` at ``target`` (blocking, ~0.5 s for 135M)."""
    import llama_cpp

    # llama-cpp-python prints llama.cpp's log at this logger's level: errors only (they end
    # the child's stderr, which the caller reports), not the per-tensor progress.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FILE_TYPES[kind])
    params.allow_requantize = True  # the source is already quantized: de-quantized first
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if status != 0:
        raise RuntimeError(f"llama_model_quantize returned {status}")


if __name__ == "__main__":
    requantize(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
