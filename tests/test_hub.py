"""Tests of `hf_deeplense.testing_utils.local_hub`: real huggingface_hub / transformers push code, local cache."""

import os
import uuid

import pytest
import torch
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from transformers import AutoConfig, AutoModelForImageClassification, ViTConfig, ViTForImageClassification

from hf_deeplense.testing_utils import hub_token_available, local_hub, requires_hub_token


def _tiny_vit() -> ViTForImageClassification:
    config = ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=3,
    )
    torch.manual_seed(0)
    return ViTForImageClassification(config).eval()


def test_model_push_to_hub_then_from_pretrained_by_repo_id(tmp_path):
    model = _tiny_vit()
    pixel_values = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with local_hub(tmp_path) as hub:
        commit = model.push_to_hub("org/tiny-vit", commit_message="first push")
        assert commit.oid == hub.head("org/tiny-vit")
        assert {"config.json", "model.safetensors", "README.md"} <= set(hub.list_files("org/tiny-vit"))
        reloaded = AutoModelForImageClassification.from_pretrained("org/tiny-vit").eval()
        with torch.no_grad():
            torch.testing.assert_close(reloaded(pixel_values).logits, model(pixel_values).logits)
        # snapshot files are relative symlinks into blobs/, as huggingface_hub writes them
        snapshot = hub.repo_folder("org/tiny-vit") / "snapshots" / commit.oid
        link = snapshot / "config.json"
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve().parent == hub.repo_folder("org/tiny-vit") / "blobs"


def test_second_push_makes_a_new_commit_and_keeps_other_files(tmp_path):
    api = HfApi()
    with local_hub(tmp_path) as hub:
        api.create_repo("org/files")
        api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="org/files")
        first = hub.head("org/files")
        api.upload_file(path_or_fileobj=b"two", path_in_repo="sub/b.txt", repo_id="org/files")
        api.upload_file(path_or_fileobj=b"ONE", path_in_repo="a.txt", repo_id="org/files")
        assert hub.list_files("org/files") == ["a.txt", "sub/b.txt"]
        assert len(hub.commits("org/files")) == 3 and hub.commits("org/files")[0] == first
        with open(hf_hub_download("org/files", "a.txt"), "rb") as handle:
            assert handle.read() == b"ONE"
        with open(hf_hub_download("org/files", "a.txt", revision=first), "rb") as handle:
            assert handle.read() == b"one"  # old commits stay readable


def test_dataset_upload_folder_and_snapshot_download(tmp_path):
    folder = tmp_path / "dataset"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# data\n")
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
    (folder / "notes.tmp").write_text("ignored")
    with local_hub(tmp_path / "hub") as hub:
        api = HfApi()
        api.create_repo("org/lenses", repo_type="dataset")
        api.upload_folder(
            repo_id="org/lenses", repo_type="dataset", folder_path=folder, ignore_patterns="*.tmp"
        )
        assert hub.list_files("org/lenses", repo_type="dataset") == [
            "README.md",
            "data/train-00000-of-00001.parquet",
        ]
        local = snapshot_download("org/lenses", repo_type="dataset")
        assert local.startswith(str(hub.cache_dir / "datasets--org--lenses" / "snapshots"))
        assert (
            open(os.path.join(local, "data", "train-00000-of-00001.parquet"), "rb").read()
            == b"PAR1 not really"
        )
        # a model repo of the same name does not exist
        with pytest.raises(LocalEntryNotFoundError):
            snapshot_download("org/lenses")


def test_delete_and_copy_operations(tmp_path):
    api = HfApi()
    with local_hub(tmp_path) as hub:
        api.create_repo("org/ops")
        api.create_commit(
            "org/ops",
            [
                CommitOperationAdd("dir/x.bin", b"x"),
                CommitOperationAdd("dir/y.bin", b"y"),
                CommitOperationAdd("z", b"z"),
            ],
            commit_message="add",
        )
        api.create_commit(
            "org/ops",
            [CommitOperationCopy("z", "z_copy"), CommitOperationDelete("dir/")],
            commit_message="copy and delete folder",
        )
        assert hub.list_files("org/ops") == ["z", "z_copy"]
        assert open(hf_hub_download("org/ops", "z_copy"), "rb").read() == b"z"
        with pytest.raises(HfHubHTTPError, match="doesn't exist"):
            api.create_commit("org/ops", [CommitOperationDelete("missing.txt")], commit_message="bad delete")


def test_push_to_branch(tmp_path):
    model = _tiny_vit()
    with local_hub(tmp_path) as hub:
        model.push_to_hub("org/branched")
        model.config.label2id = {"a": 0, "b": 1, "c": 2}
        model.config.id2label = {0: "a", 1: "b", 2: "c"}
        model.push_to_hub("org/branched", revision="dev")
        assert hub.head("org/branched", revision="dev") != hub.head("org/branched")
        assert AutoConfig.from_pretrained("org/branched", revision="dev").id2label[0] == "a"
        assert AutoConfig.from_pretrained("org/branched").id2label[0] == "LABEL_0"


def test_errors_match_the_real_hub(tmp_path):
    api = HfApi()
    with local_hub(tmp_path):
        with pytest.raises(RepositoryNotFoundError):
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="org/never-created")
        api.create_repo("org/exists")
        with pytest.raises(HfHubHTTPError) as conflict:
            api.create_repo("org/exists")
        assert conflict.value.response.status_code == 409
        assert api.create_repo("org/exists", exist_ok=True).repo_id == "org/exists"
        # the README metadata is validated (locally) before anything is committed
        with pytest.raises(ValueError, match="YAML"):
            api.upload_file(
                path_or_fileobj=b"---\n[unclosed\n---\n", path_in_repo="README.md", repo_id="org/exists"
            )
        # any request other than a commit still hits the offline guard
        with pytest.raises(OfflineModeIsEnabled):
            api.model_info("org/exists")


def test_repo_without_namespace_gets_the_local_user(tmp_path):
    with local_hub(tmp_path, user="alice") as hub:
        url = HfApi().create_repo("solo")
        assert url.repo_id == "alice/solo"
        assert hub.repo_folder("solo").name == "models--alice--solo"


def test_environment_is_restored(tmp_path):
    before = (constants.HF_HUB_CACHE, constants.HF_HOME, os.environ.get("HF_HOME"), HfApi.create_repo)
    with local_hub(tmp_path) as hub:
        assert constants.HF_HUB_CACHE == str(hub.cache_dir)
        assert os.environ["HF_HUB_CACHE"] == str(hub.cache_dir)
        assert constants.HF_HUB_OFFLINE
    assert (constants.HF_HUB_CACHE, constants.HF_HOME, os.environ.get("HF_HOME"), HfApi.create_repo) == before


def test_requires_hub_token_skips_offline():
    # tests/conftest.py sets HF_HUB_OFFLINE=1, so the real-Hub test below must be skipped here
    assert constants.HF_HUB_OFFLINE
    assert not hub_token_available()


@requires_hub_token
def test_real_hub_push_and_reload(tmp_path):
    """Pushes a tiny model to the real Hub under the token's user, reloads it, deletes the repo."""
    api = HfApi()
    repo_id = f"{api.whoami()['name']}/hf-deeplense-test-{uuid.uuid4().hex[:8]}"
    model = _tiny_vit()
    try:
        model.push_to_hub(repo_id, private=True)
        reloaded = AutoModelForImageClassification.from_pretrained(repo_id, cache_dir=tmp_path).eval()
        pixel_values = torch.randn(1, 1, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(reloaded(pixel_values).logits, model(pixel_values).logits)
    finally:
        api.delete_repo(repo_id, missing_ok=True)
