import copy
from pathlib import Path

import pytest

from tag_pipeline.lib.catalog.profile import (
    LEVEL_SEPARATOR,
    ProfileError,
    load_profile,
    parse_profile,
    shipped_profiles_dir,
)
from tag_pipeline_tests.support import BASIC_PROFILE


def parse(data: dict, tmp_path: Path):
    return parse_profile(data, tmp_path / "p.yaml", {"landing": str(tmp_path)})


def test_each_shape_is_parsed(tmp_path):
    profile = parse(BASIC_PROFILE, tmp_path)
    shapes = {t.name: t.shape for t in profile.tags}
    assert shapes == {"category_path": "path", "attributes": "key_value", "occasions": "multi",
                      "brand": "plain", "style": "lexicon"}
    path = profile.tags[0]
    assert path.separator == " > " and path.level_names == ("l1", "l2", "l3")
    kv = profile.tags[1]
    assert kv.keys == ("color", "gender") and kv.kv_separator == ":"
    assert profile.root == (tmp_path / "data").resolve()
    assert profile.image_root == (tmp_path / "data" / "images").resolve()


def test_levels_shape_carries_columns(tmp_path):
    data = copy.deepcopy(BASIC_PROFILE)
    data["tags"] = [{"name": "cat", "type": "category", "shape": "levels",
                     "columns": ["master", "sub", "article"]}]
    spec = parse(data, tmp_path).tags[0]
    assert spec.columns == ("master", "sub", "article")
    assert spec.separator == LEVEL_SEPARATOR and spec.level_names == spec.columns


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["tags"][0].update(separator=""), "tags[0].separator"),
        (lambda d: d["tags"][1].update(kv_separator=";"), "tags[1].pair_separator"),
        (lambda d: d["tags"][2].update(type="colour"), "tags[2].type"),
        (lambda d: d["tags"][3].update(shape="tree"), "tags[3].shape"),
        (lambda d: d["columns"].pop("id"), "columns.id"),
        (lambda d: d["source"].update(format="xml"), "source.format"),
        (lambda d: d["source"].update(files="../../etc/*"), "source.files"),
        (lambda d: d.update(root="{nowhere}/x"), "unknown placeholder {nowhere}"),
        (lambda d: d["columns"].update(image={"template": "img/{sku}.jpg"}), "columns.image"),
        (lambda d: d.update(cleaning={"max_title_chars": 0}), "cleaning.max_title_chars"),
        (lambda d: d["tags"][1].update(keys=[]), "tags[1].keys"),
    ],
)
def test_profile_errors_name_profile_and_key(tmp_path, mutate, message):
    data = copy.deepcopy(BASIC_PROFILE)
    mutate(data)
    with pytest.raises(ProfileError) as err:
        parse(data, tmp_path)
    assert "profile 'shop'" in str(err.value)
    assert message in str(err.value)


def test_missing_profile_file_names_it_and_lists_shipped(tmp_path):
    with pytest.raises(ProfileError, match="no profile file .*nope.yaml.*demo"):
        load_profile(str(tmp_path / "nope.yaml"), {})


def test_missing_root_folder_is_named(tmp_path):
    profile = parse(BASIC_PROFILE, tmp_path)
    with pytest.raises(ProfileError, match="key 'root' points to .*data"):
        profile.matching_files()


def test_shipped_profiles_load():
    placeholders = {"landing": "/tmp/landing", "shared_data": "/tmp/shared"}
    names = sorted(p.stem for p in shipped_profiles_dir().glob("*.yaml"))
    assert names == ["cn_reviews", "demo", "myntra"]
    for name in names:
        profile = load_profile(name, placeholders)
        assert profile.name == name
        assert profile.tags
    myntra = load_profile("myntra", placeholders)
    assert myntra.image_template == "images/{id}.jpg"
    assert load_profile("cn_reviews", placeholders).id_from_line


def test_yaml_syntax_error_names_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="bad.yaml: not valid YAML"):
        load_profile(str(bad), {})
