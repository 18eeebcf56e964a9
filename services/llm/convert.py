"""Convert a GGUF model into a transformers directory (fp32), in a child process.

    python -m services.llm.convert MODEL.gguf TARGET_DIR

Run by ``TransformersEngine`` the first time it needs the shipped SmolLM2: the de-quantized
copy the GGUF reader builds never enters the bot's (or ``adapt``'s) own memory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def convert(gguf: Path, target: Path) -> None:
    """Write ``gguf`` as a transformers model directory at ``target`` (blocking, ~20 s)."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # the GGUF reader draws a progress bar
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from services.embeddings.models import quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # A GGUF-loaded model refuses to save while it still carries its quantizer.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
