"""Tiny models built on the spot: real architectures and ``generate()``, random weights.

Hub downloads are impossible here, so tests of the seq2seq path use a BART whose tokenizer is
trained on a few sentences in the fixture.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ENGLISH_ARTICLE, SPANISH_ARTICLE

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(directory: Path, vocab_size: int = 300) -> int:
    """Train a byte-level BPE tokenizer on the test articles; save it; return its vocab size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([ENGLISH_ARTICLE, SPANISH_ARTICLE] * 3, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=128,
    )
    fast.save_pretrained(directory)
    return int(tokenizer.get_vocab_size())


def build_tiny_bart(directory: Path) -> Path:
    """A 1-layer BART with a fresh tokenizer, saved where ``from_pretrained`` can load it."""
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    directory.mkdir(parents=True, exist_ok=True)
    vocab = train_tokenizer(directory)
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=vocab,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=2,
    )
    BartForConditionalGeneration(config).save_pretrained(directory)
    return directory


def build_tiny_gpt2(directory: Path) -> Path:
    """A 2-layer GPT-2 with a byte-level tokenizer trained on the test articles."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([ENGLISH_ARTICLE, SPANISH_ARTICLE] * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=2048,
    )
    fast.save_pretrained(directory)
    torch.manual_seed(0)
    # No end-of-text token for generation: every run goes to its token limit, so tests can
    # count tokens and cancel long runs.
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=2048,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=None,
        eos_token_id=None,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    model.save_pretrained(directory)
    return directory
