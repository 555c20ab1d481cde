"""Task instructions of decoder rerankers: the flag fills the prompt's {instruction} exactly as the instruction
written into the pair template does, a query's own field overrides it (rerank files, training rows, FlagEmbedding's
`prompt`), and a head whose prompt has no place for one refuses it in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reranker import Reranker
from reranker.cli.infer import main as infer_main
from reranker.io.train_rows import check_train_row
from reranker.model.arguments import ModelArguments
from reranker.model.backbone import pair_encoder_for, resolve_score_head
from reranker.model.loading import load_tokenizer
from reranker.training.collator import GroupedTrainCollator
from reranker.training.dataset import GroupedTrainDataset
from tests.model.test_decoder_rerankers import PAIRS, assert_parameter_errors

TASK = "Given a claim, find passages that support it"
WRITTEN_IN = f"<Instruct>: {TASK}\n<Query>: {{query}}\n<Document>: {{text}}"


def test_an_instruction_equals_the_template_with_it_written_in(tiny_decoders):
    path = str(tiny_decoders["qwen3"])
    flag = Reranker.from_pretrained(path, score_head="yes_no", instruction=TASK)
    written = Reranker.from_pretrained(path, score_head="yes_no", pair_template=WRITTEN_IN)
    default = Reranker.from_pretrained(path, score_head="yes_no")
    encode = [reranker.scorer.encoder.encode([q for q, _ in PAIRS], [""] * 4, [p for _, p in PAIRS])
              for reranker in (flag, written)]  # fmt: skip
    assert [encode[0][i][0] for i in range(4)] == [encode[1][i][0] for i in range(4)]
    np.testing.assert_array_equal(flag.predict(PAIRS), written.predict(PAIRS))
    np.testing.assert_array_equal(default.predict(PAIRS, instruction=TASK), written.predict(PAIRS))
    assert np.abs(default.predict(PAIRS) - written.predict(PAIRS)).max() > 1e-6  # the instruction counts
    assert [i for i, _ in default.rank(PAIRS[0][0], [p for _, p in PAIRS], instruction=TASK)] == [
        i for i, _ in written.rank(PAIRS[0][0], [p for _, p in PAIRS])
    ]


def test_template_flags_unescape_line_breaks_and_tabs():
    args = ModelArguments(model_name_or_path="m", pair_template="<Query>: {query}\\n<Doc>:\\t{text}",
                          instruction="a\\nb")  # fmt: skip
    assert args.pair_template == "<Query>: {query}\n<Doc>:\t{text}" and args.instruction == "a\nb"


def rerank_lines(instruction_of: dict) -> str:
    lines = []
    for number, (query, passage) in enumerate(PAIRS):
        qid = "q1" if query == PAIRS[0][0] else "q2" if query == PAIRS[2][0] else "q3"
        extra = {"instruction": instruction_of[qid]} if qid in instruction_of else {}
        lines.append(json.dumps({"query_id": qid, "query": query, "docid": f"d{number}", "text": passage, **extra}))
    return "\n".join(lines) + "\n"


def read_scores(path) -> dict:
    return {(q, d): float(s) for q, d, s in (line.split("\t") for line in path.read_text().splitlines())}


@pytest.mark.slow
def test_a_query_field_overrides_the_flag_and_escapes_work_on_the_command_line(tiny_decoders, tmp_path):
    path = str(tiny_decoders["qwen3"])
    rerank = tmp_path / "in.jsonl"
    rerank.write_text(rerank_lines({"q2": "Find the assassin"}))
    common = ["--model_name_or_path", path, "--score_head", "yes_no", "--encode_in_path", str(rerank)]
    assert infer_main([*common, "--instruction", TASK, "--encoded_save_path", str(tmp_path / "flag.txt")]) == 0
    escaped = WRITTEN_IN.replace("\n", "\\n")  # as a shell passes it
    plain = tmp_path / "plain.jsonl"
    plain.write_text(rerank_lines({}))
    written_in = [*common[:4], "--encode_in_path", str(plain), "--pair_template", escaped]
    assert infer_main([*written_in, "--encoded_save_path", str(tmp_path / "tpl.txt")]) == 0
    # a prompt without an {instruction} placeholder leaves the queries' own out (with a warning)
    assert infer_main([*common, "--pair_template", escaped, "--encoded_save_path", str(tmp_path / "x.txt")]) == 0
    assert read_scores(tmp_path / "x.txt") == read_scores(tmp_path / "tpl.txt")
    flag, template = read_scores(tmp_path / "flag.txt"), read_scores(tmp_path / "tpl.txt")
    reranker = Reranker.from_pretrained(path, score_head="yes_no")
    expected = [
        *reranker.predict(PAIRS[:2], instruction=TASK),
        *reranker.predict(PAIRS[2:], instruction="Find the assassin"),
    ]
    for key, score in zip([("q1", "d0"), ("q1", "d1"), ("q2", "d2"), ("q2", "d3")], expected, strict=True):
        assert flag[key] == pytest.approx(score, abs=1e-6)
    # the same prompts; batched with other pairs in each file (CPU batches pad short lengths together): rounding
    assert [flag[key] for key in [("q1", "d0"), ("q1", "d1")]] == pytest.approx(
        [template[key] for key in [("q1", "d0"), ("q1", "d1")]], abs=1e-6
    )
    assert flag[("q2", "d2")] != template[("q2", "d2")]  # the query's field, not the flag


def test_training_rows_bring_their_instruction(tiny_decoders):
    path = str(tiny_decoders["qwen3"])
    flag_embedding = {"query": PAIRS[0][0], "pos": [PAIRS[0][1]], "neg": [PAIRS[1][1]], "prompt": TASK}
    positive, negative = [{"text": PAIRS[0][1]}], [{"text": PAIRS[1][1]}]
    tevatron = {"query_id": "1", "query": PAIRS[0][0], "instruction": TASK, "positive_passages": positive,
                "negative_passages": negative}  # fmt: skip
    rows = [check_train_row(record, "train.jsonl", 1) for record in (flag_embedding, tevatron)]
    assert [row["instruction"] for row in rows] == [TASK, TASK]
    tokenizer = load_tokenizer(path)
    encoder = pair_encoder_for(resolve_score_head(path, tokenizer, "yes_no"), tokenizer, 16, 48)
    groups = [GroupedTrainDataset(rows, 2, 0, True, True)[i] for i in range(2)]
    batch = GroupedTrainCollator(encoder)(groups)
    expected = encoder.encode([PAIRS[0][0]] * 2, ["", ""], [PAIRS[0][1], PAIRS[1][1]], [TASK, TASK])
    assert batch["input_ids"][0, : len(expected[0][0])].tolist() == expected[0][0]
    assert encoder.encode([PAIRS[0][0]], [""], [PAIRS[0][1]])[0][0] != expected[0][0]


def test_an_instruction_without_a_place_is_a_one_line_error(tiny_decoders, tiny_model_dir, tokenizer):
    qwen, bert = str(tiny_decoders["qwen3"]), str(tiny_model_dir)
    qwen_tokenizer = load_tokenizer(qwen)
    cases = [
        (lambda: resolve_score_head(bert, tokenizer, None, {"instruction": TASK}),
         r"^instruction goes with the decoder heads"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "last_token", {"instruction": TASK}),
         r"^instruction 'Given a claim.*': the prompt has no place for one \(no \{instruction\} placeholder in "
         r"pair_template\)$"),
        (lambda: Reranker.from_pretrained(bert).predict(PAIRS, instruction=TASK),
         r"^instruction: the model's pair layout has no place for one \(no \{instruction\} in its prompt\)$"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "last_token", {"pair": "{instruction} {query} {text}"}),
         r"^pair_template has an \{instruction\} placeholder: give instruction$"),
    ]  # fmt: skip
    assert_parameter_errors(cases)


@pytest.mark.slow
def test_the_teacher_stage_reads_each_rows_instruction(tiny_decoders, tmp_path):
    from reranker.cli.teacher_scores import main as teacher_main

    path = str(tiny_decoders["qwen3"])
    rows = tmp_path / "rows.jsonl"
    records = [{"query": PAIRS[0][0], "pos": [PAIRS[0][1]], "neg": [PAIRS[1][1]], "prompt": TASK},
               {"query": PAIRS[2][0], "pos": [PAIRS[2][1]], "neg": [PAIRS[3][1]]}]  # fmt: skip
    rows.write_text("".join(json.dumps(record) + "\n" for record in records))
    output = tmp_path / "scored.jsonl"
    assert (
        teacher_main(["--teacher", path, "--score_head", "yes_no", "--input", str(rows), "--output", str(output)]) == 0
    )
    scored = [json.loads(line) for line in output.read_text().splitlines()]
    reranker = Reranker.from_pretrained(path, score_head="yes_no")
    np.testing.assert_allclose(scored[0]["pos_scores"] + scored[0]["neg_scores"],
                               reranker.predict(PAIRS[:2], instruction=TASK), atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(scored[1]["pos_scores"] + scored[1]["neg_scores"], reranker.predict(PAIRS[2:]),
                               atol=1e-5)  # fmt: skip


@pytest.mark.slow
def test_training_records_the_instruction_and_the_preset(tiny_decoders, train_file, tmp_path):
    from tests.training.test_decoder_training import lora_run

    out = lora_run(tiny_decoders["qwen3"], train_file, tmp_path / "run", None, preset="qwen3-reranker",
                   instruction=TASK, true_token="Yes", false_token="No")  # fmt: skip
    record = json.loads((out / "reranker_head.json").read_text())
    assert record["score_head"] == "yes_no" and record["tokens"] == ["Yes", "No"]
    assert record["template"]["instruction"] == TASK and "{instruction}" in record["template"]["pair"]
    assert json.dumps(TASK) in load_tokenizer(str(out)).chat_template  # the default of CrossEncoder's prompt=
    tokenizer = load_tokenizer(str(out))
    head = resolve_score_head(str(out), tokenizer)  # the record is enough: no flags
    assert head.yes_no_token_ids == tuple(tokenizer.convert_tokens_to_ids(["Yes", "No"]))
