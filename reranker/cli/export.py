"""`python -m reranker.export --to seq_cls --model_name_or_path M --output_dir OUT`: a yes_no reranker
(Qwen3-Reranker-style causal LM, a folder trained here, a LoRA adapter folder or a Hub name) as a one-logit
`...ForSequenceClassification` whose score row is W[yes] - W[no]: the form vLLM's `LLM(task="score")`, TEI and
infinity serve; it scores exactly as the yes_no model (same prompt, recorded with it).
"""

from __future__ import annotations

import argparse

from reranker.cli.common import exits_on_bad_input
from reranker.model.heads import DECODER_FLAGS
from reranker.model.prompt_template import unescape_flag

CONVERSIONS = ("seq_cls",)


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", choices=CONVERSIONS, required=True, help="The form to export to.")
    parser.add_argument("--model_name_or_path", required=True, help="The model folder, adapter folder or Hub name.")
    parser.add_argument("--output_dir", required=True, help="Folder to write (must not exist or be empty).")
    parser.add_argument("--tokenizer_name", help="Tokenizer, where the model folder has none.")
    for flag in DECODER_FLAGS:
        parser.add_argument(
            f"--{flag}", type=unescape_flag, help="For a model that records none: as train_reranker.py"
        )
    args = parser.parse_args(argv)
    from reranker.model.seq_cls_export import export_seq_cls  # imports torch: --help stays fast

    settings = {flag: getattr(args, flag) for flag in DECODER_FLAGS}
    output = export_seq_cls(args.model_name_or_path, args.output_dir, args.tokenizer_name, **settings)
    print(f"wrote the sequence-classifier export of {args.model_name_or_path} to {output}")


if __name__ == "__main__":
    raise SystemExit(main())
