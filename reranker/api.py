"""The Python API: `Reranker` scores pairs, ranks passages and reranks files; `train` runs the training stage.

Everything the command line does goes through here: `reranker_inference.py` is `Reranker.from_pretrained(...)
.rerank_file(...)`, `train_reranker.py` is `train(...)`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reranker.distributed import World
from reranker.inference.chunks import check_chunk_size, check_sharding
from reranker.inference.prefetch import prefetch
from reranker.inference.runtimes import (
    ExportedModel,
    ExportedPairScorer,
    check_backend,
    check_export,
    check_num_threads,
    load_exported_model,
    read_export_record,
)
from reranker.inference.score_file import RerankStats, scoring_job
from reranker.inference.scoring import PairScorer, ScoringOptions, cap_cpu_kernel_caches, check_batching
from reranker.inference.sharded import rerank_file_on_all_ranks
from reranker.io.errors import ParameterError, check_at_least, literal
from reranker.io.stamps import source_stamp
from reranker.io.window_scores import Aggregate
from reranker.io.windows import WindowSpec, check_window_fits, check_window_within, cut_windows, token_spans
from reranker.model.arguments import ModelArguments
from reranker.model.backbone import (
    ScoreHead,
    decoder_settings,
    load_scoring_model,
    pair_encoder_for,
    resolve_score_head,
)
from reranker.model.heads import max_lengths
from reranker.model.loading import load_tokenizer
from reranker.model.pair_encoding import check_max_lengths
from reranker.model.precision import autocast_dtype, check_precision
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments

Passage = str | tuple[str, str]  # the text, or (title, text)
PREDICT_CHUNK = 20000  # pairs encoded (in a background thread) and scored together, as the CLI's chunks


class Reranker:
    """A cross-encoder that scores (query, passage) pairs with the engine of `reranker_inference.py`: pairs sorted
    by length and batched exactly (no padding on a CPU), tokenized in a background thread, fp32 scores (raw logits,
    higher is more relevant).

    Example:
        >>> reranker = Reranker.from_pretrained("runs/minilm")  # a train_reranker.py output folder
        >>> scores = reranker.predict([("what is a lobster roll", "A lobster roll is a sandwich.")])
        >>> best = reranker.rank("lobster roll", ["Lobster is a crustacean.", "A lobster roll is a sandwich."])[0]
    """

    def __init__(
        self,
        model: torch.nn.Module | ExportedModel,
        tokenizer,
        *,
        q_max_len: int = 16,
        p_max_len: int = 128,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        batch_size: int = 128,
        max_tokens_per_batch: int | None = None,
        pad_to_multiple_of: int | None = None,
        passage_field_separator: str = " ",
        source: dict | None = None,
        score_head: ScoreHead | None = None,
        options: ScoringOptions | None = None,
    ) -> None:
        """Wrap a loaded model and tokenizer; `Reranker.from_pretrained` loads them from a folder or the Hub.

        Args:
            model: a sequence-classification model with one label (a decoder: with its head, see `load_scoring_model`),
                or an exported one on its CPU runtime (`reranker.inference.runtimes.load_exported_model`).
            tokenizer: its tokenizer (fast tokenizers are encoded fastest).
            q_max_len, p_max_len: query and passage tokens kept (the pair holds at most their sum).
            device: "cpu", "cuda", "cuda:N" (default: this process's GPU if there is one, else the CPU).
            precision: "fp32", "bf16" or "fp16" (autocast; the head and the scores stay fp32). Where the hardware
                lacks it, fp32 with a warning.
            batch_size: pairs per forward pass.
            max_tokens_per_batch: cap a batch's tokens as well (default: 4096 on a CPU, none on a GPU).
            pad_to_multiple_of: batch pairs by length rounded up to this (default: 8 on a GPU, 1 on a CPU).
            passage_field_separator: text between a passage's title and its text.
            source: what identifies the weights in a rerank job's fingerprint (set by `from_pretrained`; by
                default a hash of the weights).
            score_head: how the model reads a pair (`resolve_score_head`; default: a BERT-style cross-encoder).
            options: GPU speed variants (`ScoringOptions`: fixed shapes, device mask, cast weights, queue ahead).
        """
        self.score_head = score_head or ScoreHead(None)
        encoder = pair_encoder_for(self.score_head, tokenizer, q_max_len, p_max_len,
                                   passage_field_separator)  # fmt: skip
        self.precision = precision
        self.tokenizer = tokenizer
        if isinstance(model, ExportedModel):
            _check_exported_settings(model, precision, device)
            self.scorer = ExportedPairScorer(model, encoder, batch_size, max_tokens_per_batch, pad_to_multiple_of)
            source = source or {"model": source_stamp(model.path)}
        else:
            device = World.from_environment().device(None if device is None else str(device))
            dtype = autocast_dtype(precision, device)
            self.scorer = PairScorer(model, encoder, device, dtype, batch_size, max_tokens_per_batch,
                                     pad_to_multiple_of, options=options)  # fmt: skip
        self._source = source

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        tokenizer: str | None = None,
        q_max_len: int | None = None,
        p_max_len: int | None = None,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        batch_size: int = 128,
        max_tokens_per_batch: int | None = None,
        pad_to_multiple_of: int | None = None,
        passage_field_separator: str = " ",
        torch_compile: bool = False,
        config_name: str | None = None,
        cache_dir: str | None = None,
        revision: str | None = None,
        score_head: str | None = None,
        pair_template: str | None = None,
        template_prefix: str | None = None,
        template_suffix: str | None = None,
        instruction: str | None = None,
        preset: str | None = None,
        true_token: str | None = None,
        false_token: str | None = None,
        attn_implementation: str | None = None,
        backend: str | None = None,
        num_threads: int | None = None,
        options: ScoringOptions | None = None,
    ) -> Reranker:
        """Load a reranker as `reranker_inference.py` does: a folder written by `train_reranker.py` (a LoRA
        adapter folder is loaded on its base model and merged), a sentence-transformers CrossEncoder folder, a
        decoder LLM reranker (Qwen3-Reranker with `score_head="yes_no"`), a Hub name, or an export folder of
        `python -m reranker.export` (ONNX Runtime or OpenVINO on the CPU; checked on load: one that no longer
        gives the scores it was exported with is refused).

        Args:
            name_or_path: model folder, adapter folder or Hub name.
            tokenizer: tokenizer folder or Hub name, if the model folder has none.
            q_max_len, p_max_len: query and passage tokens kept (default: 16 and 128 for an encoder, the
                reference's; 64 and 448 for an LLM reranker, whose prompt comes on top).
            torch_compile: compile the model with `torch.compile`: dynamic shapes, or with `options.fixed_shapes`
                one static graph per batch shape (`PairScorer.compile`).
            config_name, cache_dir, revision: as for `transformers`' `from_pretrained`.
            score_head: for a checkpoint that records none: "cls", "segment_cosine", "last_token" or "yes_no".
            pair_template, template_prefix, template_suffix: a decoder's prompt (default: the checkpoint's, else
                its head's; see `reranker.model.prompt_template`).
            instruction: a decoder's default task instruction (the `{instruction}` of its pair template).
            preset: a published LLM reranker's head, prompt and tokens ("qwen3-reranker", "bge-reranker-v2-gemma",
                "rankllama-v1"; see `reranker.model.heads`).
            true_token, false_token: a yes_no head's relevance tokens (default "yes", "no"; no false token: the true
                token's logit alone), each a single token of the vocabulary.
            attn_implementation: "sdpa" (default), "flash_attention_2" or "eager".
            backend: "torch", "onnx" or "openvino" (default: an export folder's own backend, else torch).
            num_threads: CPU threads for scoring (default: PyTorch's or the runtime's own, all cores).
            The others: as for `Reranker(...)`. A decoder's weights are loaded in bf16/fp16 when that precision
            is asked for and the device has it (its score head stays fp32).

        Returns:
            The Reranker. Settings that cannot work, and a folder without tokenizer files, are a ParameterError
            (a ValueError) naming the parameter, before the model is loaded.

        Example:
            >>> reranker = Reranker.from_pretrained("runs/minilm", precision="bf16", batch_size=64)
        """
        # checked before anything is read with the smaller (encoder) default lengths, again once the head is known
        check_max_lengths(*max_lengths(q_max_len, p_max_len))
        check_precision(precision)
        check_batching(batch_size, max_tokens_per_batch, pad_to_multiple_of, sum(max_lengths(q_max_len, p_max_len)))
        check_backend(backend)
        check_num_threads(num_threads)
        record = read_export_record(name_or_path)
        if record is not None or backend not in (None, "torch"):
            if torch_compile:
                raise ParameterError("{0} goes with the torch backend; an export is already compiled", "torch_compile")
            if options not in (None, ScoringOptions()):  # GPU variants of the torch path
                raise ParameterError("{0} (fixed shapes, device mask, ...) go with the torch backend", "options")
            model, head, loaded_tokenizer = _load_export(name_or_path, record, backend, tokenizer, num_threads)
            source = {"model": source_stamp(name_or_path), "tokenizer": source_stamp(tokenizer or name_or_path)}
            q_max_len, p_max_len = max_lengths(q_max_len, p_max_len)  # exports are encoders
            return cls(
                model, loaded_tokenizer, q_max_len=q_max_len, p_max_len=p_max_len, device=device,
                precision=precision, batch_size=batch_size, max_tokens_per_batch=max_tokens_per_batch,
                pad_to_multiple_of=pad_to_multiple_of, passage_field_separator=passage_field_separator,
                source=source, score_head=head,
            )  # fmt: skip
        if num_threads:
            torch.set_num_threads(num_threads)
        cap_cpu_kernel_caches()
        tokenizer_name = tokenizer or name_or_path
        loaded_tokenizer = load_tokenizer(tokenizer_name, cache_dir, revision)
        template = decoder_settings(pair_template=pair_template, template_prefix=template_prefix,
                                    template_suffix=template_suffix, instruction=instruction, preset=preset,
                                    true_token=true_token, false_token=false_token)  # fmt: skip
        head = resolve_score_head(name_or_path, loaded_tokenizer, score_head, template, config_name, cache_dir,
                                  revision)  # fmt: skip
        q_max_len, p_max_len = max_lengths(q_max_len, p_max_len, head.lengths)
        check_batching(batch_size, max_tokens_per_batch, pad_to_multiple_of, q_max_len + p_max_len)
        dtype = autocast_dtype(precision, World.from_environment().device(None if device is None else str(device)))
        model = load_scoring_model(
            name_or_path,
            head,
            config_name,
            cache_dir,
            revision,
            dtype=dtype if head.decoder else None,
            attn_implementation=attn_implementation,
        )
        source = {"model": source_stamp(name_or_path), "tokenizer": source_stamp(tokenizer_name), "revision": revision}
        if head.decoder:  # the same weights score differently under another head or template
            source["score_head"] = head.record()
        reranker = cls(
            model, loaded_tokenizer, q_max_len=q_max_len, p_max_len=p_max_len, device=device, precision=precision,
            batch_size=batch_size, max_tokens_per_batch=max_tokens_per_batch, pad_to_multiple_of=pad_to_multiple_of,
            passage_field_separator=passage_field_separator, source=source, score_head=head, options=options,
        )  # fmt: skip
        if torch_compile:
            reranker.scorer.compile()
        return reranker

    @property
    def device(self) -> torch.device:
        return self.scorer.device

    def predict(
        self,
        pairs_or_queries: Sequence[Sequence[str]] | Sequence[str] | str,
        passages: Sequence[Passage] | None = None,
        *,
        instruction: str | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Score pairs: `predict(pairs)` with `(query, passage)` or `(query, title, text)` tuples, or
        `predict(queries, passages)` with aligned lists (a single query string goes with every passage; a
        passage is its text or a `(title, text)` tuple).

        Args:
            pairs_or_queries: the pairs, or the queries.
            passages: the passages, when the first argument holds the queries.
            instruction: the task instruction of these pairs (a decoder whose prompt has an `{instruction}`;
                default: the model's).
            show_progress: show a tqdm bar.

        Returns:
            float32 scores (raw logits) in input order: the numbers `reranker_inference.py` writes for the
            same pairs.

        Example:
            >>> reranker.predict([("a query", "a title", "its text"), ("a query", "a passage")]).shape
            (2,)
        """
        queries, titles, texts = _columns(pairs_or_queries, passages)
        if instruction is not None and not self.scorer.encoder.takes_instruction:
            raise ParameterError("{0}: the model's pair layout has no place for one (no {{instruction}} in its "
                                 "prompt)", "instruction")  # fmt: skip
        scores = np.empty(len(queries), dtype=np.float32)
        encoder = self.scorer.encoder
        starts = range(0, len(queries), PREDICT_CHUNK)
        instructions = [instruction] * len(queries)
        chunks = prefetch(((s, encoder.encode(*(c[s : s + PREDICT_CHUNK] for c in (queries, titles, texts,
                                                                                   instructions))))
                           for s in starts), depth=1)  # fmt: skip
        with tqdm(total=len(queries), desc="scoring", unit=" pairs", disable=not show_progress) as bar:
            for start, pairs in chunks:
                scores[start : start + len(pairs)] = self.scorer.score_encoded(pairs)
                bar.update(len(pairs))
        return scores

    def rank(
        self,
        query: str,
        passages: Sequence[Passage],
        top_k: int | None = None,
        *,
        instruction: str | None = None,
        show_progress: bool = False,
        max_tokens_per_doc: int | None = None,
        stride: int | None = None,
        aggregate: str | None = None,
    ) -> list[tuple[int, float]]:
        """Rank passages for one query; long documents as windows of `max_tokens_per_doc` tokens, each scored and
        their scores aggregated (what `prepare_rerank_file.py --window_tokens --tokenizer_name` and
        `convert_result_to_marco.py --aggregate` do to files).

        Args:
            query: the query.
            passages: texts or `(title, text)` tuples (a title goes with the first window).
            top_k: keep only the best `top_k` (default: all).
            instruction: the query's task instruction (as for `predict`).
            show_progress: show a tqdm bar.
            max_tokens_per_doc: cut each text into windows of this many of the model's tokens (at most
                `p_max_len`, which every passage is cut to); a text that fits is one window (default: no windows,
                each passage cut to `p_max_len`).
            stride: tokens between window starts (default: `max_tokens_per_doc`, no overlap).
            aggregate: firstp, maxp (default, as Cohere's rerank), sump, meanp or kmaxavg:K
                (`reranker.io.window_scores`).

        Returns:
            `[(index in passages, score), ...]` by score, descending; ties keep input order. With windows, a
            document's score is its aggregate, rounded to float32.

        Example:
            >>> [index for index, score in reranker.rank("a query", ["a passage", "another one"], top_k=1)]
            [1]
            >>> reranker.rank("a query", [long_text, other_text], max_tokens_per_doc=96, stride=48, aggregate="maxp")
        """
        check_at_least("top_k", top_k, 1)
        if max_tokens_per_doc is None:
            if stride is not None or aggregate is not None:
                raise ParameterError("{0} and {1} need {2}", "stride", "aggregate", "max_tokens_per_doc")
            scores = self.predict(query, passages, instruction=instruction, show_progress=show_progress)
        else:
            spec = WindowSpec(max_tokens_per_doc, stride, names=("max_tokens_per_doc", "stride"))
            aggregation = Aggregate.parse(aggregate or "maxp")
            scores = self._window_scores(query, passages, spec, aggregation, instruction, show_progress)
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [(int(i), float(scores[i])) for i in order]

    def _window_scores(
        self,
        query: str,
        passages: Sequence[Passage],
        spec: WindowSpec,
        aggregate: Aggregate,
        instruction: str | None,
        show_progress: bool,
    ) -> np.ndarray:
        """Each passage's aggregate of its windows' scores, all windows scored in one `predict`."""
        check_window_within(spec, self.scorer.encoder.p_max_len)
        check_window_fits(spec, self.tokenizer, self.scorer.encoder.q_max_len)
        _, titles, texts = _columns(query, passages)
        documents = [cut_windows(title, text, spans, spec) for title, text, spans in
                     zip(titles, texts, token_spans(self.tokenizer)(texts), strict=True)]  # fmt: skip
        windows = [(window.title, window.text) for document in documents for window in document]
        scores = self.predict(query, windows, instruction=instruction, show_progress=show_progress)
        window_scores = iter(scores.tolist())
        combined = [aggregate([(window.index, next(window_scores)) for window in document]) for document in documents]
        return np.asarray(combined, dtype=np.float32)

    def rerank_file(
        self,
        input_path: str | os.PathLike,
        output_path: str | os.PathLike,
        *,
        chunk_size: int = 20000,
        num_shards: int = 1,
        shard_index: int = 0,
        show_progress: bool = True,
        arguments: dict | None = None,
        encode_workers: int = 0,
    ) -> RerankStats:
        """Score a rerank input file (from `prepare_rerank_file.py`) into `qid<TAB>docid<TAB>score` lines, each
        query sorted by score: exactly `reranker_inference.py`. Resumable after a crash or kill (run it again), the
        output appears under its name only when complete, with `OUTPUT.summary.json` beside it; under torchrun
        the ranks share the work.

        Args:
            input_path: rerank input JSONL.
            output_path: score file to write.
            chunk_size: candidates per chunk (whole queries), sorted by length and written together.
            num_shards, shard_index: score only shard `shard_index` of `num_shards` (merge the shards with
                `python -m reranker.merge_scores`).
            show_progress: show a tqdm bar.
            arguments: settings to record in the summary (default: this call's and the Reranker's).
            encode_workers: processes that read and tokenize the input (0: a thread of this process); the same
                output, the scoring process's GIL left to the model (a GPU's kernel launches).

        Returns:
            What this process scored (queries, candidates, seconds).

        Example:
            >>> stats = reranker.rerank_file("runs/dev600.rerank.jsonl", "runs/dev600.scores.txt")
        """
        check_chunk_size(chunk_size)
        check_sharding(num_shards, shard_index)
        input_path, output_path = os.fspath(input_path), os.fspath(output_path)
        if arguments is None:
            arguments = {**self._settings(), "input_path": input_path, "output_path": output_path,
                         "chunk_size": chunk_size, "num_shards": num_shards, "shard_index": shard_index,
                         "encode_workers": encode_workers}  # fmt: skip
        job = scoring_job(input_path, self._source or {"weights": _weights_digest(self.scorer.model)}, self.scorer)
        shards = ((num_shards, shard_index),) if num_shards > 1 else ()
        return rerank_file_on_all_ranks(self.scorer, input_path, output_path, job=job, chunk_size=chunk_size,
                                        shards=shards, arguments=arguments, show_progress=show_progress,
                                        encode_workers=encode_workers)  # fmt: skip

    def _settings(self) -> dict:
        scorer, encoder = self.scorer, self.scorer.encoder
        return {"source": self._source, "q_max_len": encoder.q_max_len, "p_max_len": encoder.p_max_len,
                "device": str(scorer.device), "precision": self.precision, "batch_size": scorer.batch_size,
                "max_tokens_per_batch": scorer.max_tokens_per_batch, "pad_to_multiple_of": scorer.pad_to_multiple_of,
                "passage_field_separator": encoder.separator}  # fmt: skip


def _load_export(
    folder: str, record: dict | None, backend: str | None, tokenizer: str | None, num_threads: int | None
) -> tuple[ExportedModel, ScoreHead, object]:
    """An export folder's model on its runtime, its head and tokenizer, checked on the pairs it was made with."""
    if record is None:
        raise ParameterError(f"{{0}} {backend}: {literal(folder)} is not an export (it has no reranker_export.json); "
                             "make one with python -m reranker.export", "backend")  # fmt: skip
    if backend not in (None, record["backend"]):
        raise ParameterError(f"{{0}} {backend}: {literal(folder)} is an export for {record['backend']} (its "
                             "PyTorch weights are not in it)", "backend")  # fmt: skip
    loaded_tokenizer = load_tokenizer(tokenizer or folder)
    head = resolve_score_head(folder, loaded_tokenizer)
    model = load_exported_model(folder, record["backend"], num_threads)
    lengths = record["lengths"]
    check_encoder = pair_encoder_for(head, loaded_tokenizer, lengths["q_max_len"], lengths["p_max_len"],
                                     lengths["separator"])  # fmt: skip
    check_export(model, check_encoder, record, folder)
    return model, head, loaded_tokenizer


def _check_exported_settings(model: ExportedModel, precision: str, device: str | torch.device | None) -> None:
    if precision != "fp32":
        raise ParameterError(f"{{0}} {precision} goes with the torch backend: a {model.backend} export computes in "
                             "the precision it was exported in", "precision")  # fmt: skip
    if device is not None and torch.device(device).type != "cpu":
        raise ParameterError(f"{{0}} {device}: a {model.backend} export runs on the CPU", "device")


def _weights_digest(model: torch.nn.Module) -> str:
    """A hash of a model's weights, identifying an in-memory model in a job fingerprint."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _columns(pairs_or_queries, passages) -> tuple[list[str], list[str], list[str]]:
    """(queries, titles, texts) from either calling form of `predict`, every item checked."""
    if passages is None:
        if isinstance(pairs_or_queries, str):
            raise ParameterError("{0} must be a list of (query, passage) or (query, title, text) tuples", "pairs")
        rows = [_pair(i, pair) for i, pair in enumerate(pairs_or_queries)]
    else:
        passages = list(passages)
        queries = [pairs_or_queries] * len(passages) if isinstance(pairs_or_queries, str) else list(pairs_or_queries)
        if len(queries) != len(passages):
            raise ParameterError(f"{{0}} and {{1}} differ in length: {len(queries)} and {len(passages)}",
                                 "queries", "passages")  # fmt: skip
        rows = [_pair(i, (query, *((p,) if isinstance(p, str) else p))) for i, (query, p) in
                enumerate(zip(queries, passages, strict=True))]  # fmt: skip
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def _pair(index: int, pair) -> tuple[str, str, str]:
    if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) not in (2, 3):
        raise ParameterError(f"{{0}}[{index}] must be (query, passage) or (query, title, text), got {pair!r:.80}",
                             "pairs")  # fmt: skip
    if not all(isinstance(part, str) for part in pair):
        raise ParameterError(f"{{0}}[{index}] must hold strings, got {pair!r:.80}", "pairs")
    return (pair[0], "", pair[1]) if len(pair) == 2 else tuple(pair)


def train(
    model_args: ModelArguments | None = None,
    data_args: TrainDataArguments | None = None,
    training_args: RerankerTrainingArguments | None = None,
    **flags,
) -> Path:
    """Train a cross-encoder: `train_reranker.py` from Python. Give the three argument dataclasses the command
    line parses, or the flags as keywords (the same names, without the dashes).

    Args:
        model_args, data_args, training_args: `ModelArguments`, `TrainDataArguments` and
            `RerankerTrainingArguments`.
        **flags: instead of the dataclasses, e.g. `output_dir=..., model_name_or_path=..., dataset_name=...,
            num_train_epochs=1`.

    Returns:
        The output folder: model, tokenizer, model card (README.md) and summary.json. An existing run there is
        resumed from its newest complete checkpoint, as on the command line.

    Example:
        >>> folder = train(output_dir="runs/minilm", model_name_or_path=MINILM, dataset_name="train.jsonl.gz",
        ...                learning_rate=1e-4, num_train_epochs=3, seed=42)
    """
    from reranker.training.driver import run_training

    given = (model_args, data_args, training_args)
    if flags and any(given):
        raise ParameterError("give either {0} or keyword flags, not both", "model_args/data_args/training_args")
    if flags:
        model_args, data_args, training_args = _parse_training_flags(flags)
    elif not all(given):
        raise ParameterError("{0}, {1} and {2} go together", "model_args", "data_args", "training_args")
    return run_training(model_args, data_args, training_args)


def _parse_training_flags(flags: dict) -> tuple:
    from transformers import HfArgumentParser

    parser = HfArgumentParser((ModelArguments, TrainDataArguments, RerankerTrainingArguments))
    known = {field for dataclass in parser.dataclass_types for field in dataclass.__dataclass_fields__}
    unknown = sorted(set(flags) - known)
    if unknown:
        raise ParameterError(f"unknown training flag{'s' if len(unknown) > 1 else ''}: {literal(', '.join(unknown))}")
    return parser.parse_dict(flags)
