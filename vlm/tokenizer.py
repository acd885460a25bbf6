"""Text ↔ token ids for training and evaluation: a Qwen tokenizer folder, or bytes for tiny models.

A real checkpoint folder carries its Hugging Face tokenizer (Qwen2.5-VL's ``tokenizer.json``);
it is loaded from that folder only (no download). The tiny CPU models of the tests and of
``configs/tiny.yaml`` have no such tokenizer, so recon4d ships :class:`ByteTokenizer`: every
UTF-8 byte is one id (0–255) and the three chat role words one id each (256–258), which any
vocabulary of at least 259 + the special ids holds; decoding is exact. A folder saved by ``recon4d train`` records which one it used in
``recon4d_tokenizer.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from recon4d.errors import Recon4dError
from recon4d.vlm.configuration import TokenIds

BYTE_TOKENIZER_FILE = "recon4d_tokenizer.json"


class TokenizerError(Recon4dError, ValueError):
    """No usable tokenizer for a model (missing folder files, vocabulary too small)."""


class Tokenizer(Protocol):
    """What training and evaluation need from a tokenizer."""

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` without special tokens added."""

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` with special tokens dropped."""

    def save(self, folder: Path) -> None:
        """Write what :func:`load_tokenizer` needs to rebuild it from ``folder``."""


ROLE_WORDS = ("system", "user", "assistant")
"""Words the byte tokenizer keeps whole (ids 256, 257, 258), as Qwen's vocabulary does: the reference
masks ``<|im_start|>assistant\n`` as exactly three tokens (VLM_FACTS §1.4–1.5)."""
_ROLE_PATTERN = re.compile("|".join(ROLE_WORDS))


@dataclass(frozen=True)
class ByteTokenizer:
    """One id per UTF-8 byte (ids 0–255) and one per role word (256–258); ids of ``special`` and any
    other id are dropped when decoding."""

    special: tuple[int, ...] = ()
    """Special-token ids (chat and vision markers) that :meth:`decode` skips."""

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        cursor = 0
        for match in _ROLE_PATTERN.finditer(text):
            ids += text[cursor:match.start()].encode("utf-8")
            ids.append(256 + ROLE_WORDS.index(match.group()))
            cursor = match.end()
        return ids + list(text[cursor:].encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        out = bytearray()
        for i in ids:
            if 0 <= i < 256:
                out.append(i)
            elif 256 <= i < 256 + len(ROLE_WORDS):
                out += ROLE_WORDS[i - 256].encode()
        return out.decode("utf-8", errors="replace")

    def save(self, folder: Path) -> None:
        from recon4d.outputs import write_json

        write_json(Path(folder) / BYTE_TOKENIZER_FILE, {"kind": "bytes", "special": list(self.special)},
                   what="tokenizer description")

    @classmethod
    def for_model(cls, vocab_size: int, ids: TokenIds) -> ByteTokenizer:
        """A byte tokenizer for a model of ``vocab_size`` whose special ids are ``ids``; the 256 byte
        ids must not collide with them."""
        special = tuple(ids.non_text())
        if vocab_size < 259 or min(special) < 259:
            raise TokenizerError(
                f"the byte tokenizer needs ids 0-258 free of special tokens in a vocabulary of at least 259; this "
                f"model has vocab_size {vocab_size} and special ids from {min(special)}. Use a model folder with "
                "its own tokenizer (model.tokenizer: PATH) instead.")
        return cls(special)


class HFTokenizer:
    """A Hugging Face tokenizer read from a local folder."""

    def __init__(self, folder: str | Path) -> None:
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise TokenizerError(
                f"cannot load a tokenizer from {folder} ({str(exc).splitlines()[0][:200]}); the folder needs "
                "tokenizer.json (or vocab.json + merges.txt) and tokenizer_config.json, as Qwen2.5-VL's checkpoint "
                "has. Point model.tokenizer at such a folder.") from None

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def save(self, folder: Path) -> None:
        # save_pretrained writes several files; they go into the model folder that the caller
        # is itself writing atomically (a staging folder), so no partial tokenizer is ever visible.
        self.tokenizer.save_pretrained(str(folder))


def load_tokenizer(source: str | Path | None, vocab_size: int, ids: TokenIds) -> Tokenizer:
    """``"bytes"`` → :class:`ByteTokenizer`; a folder → its recon4d byte tokenizer or HF tokenizer."""
    if source is None or str(source) == "bytes":
        return ByteTokenizer.for_model(vocab_size, ids)
    folder = Path(source)
    if not folder.is_dir():
        raise TokenizerError(f"tokenizer folder {folder} does not exist; give a checkpoint folder holding a "
                             "tokenizer, or 'bytes' for the byte tokenizer of tiny test models.")
    marker = folder / BYTE_TOKENIZER_FILE
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (ValueError, AttributeError):
            kind = None
        if kind != "bytes":
            raise TokenizerError(f"{marker} is not a recon4d tokenizer description; remove it or re-save "
                                 "the model.")
        return ByteTokenizer.for_model(vocab_size, ids)
    return HFTokenizer(folder)
