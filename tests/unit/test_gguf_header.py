"""The GGUF header reader, checked against the gguf package and llama.cpp on real files."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

import pyllmattr as pla
from pyllmattr.models.gguf_header import FILE_TYPES, TENSOR_TYPES, format_params, format_size


def test_the_header_agrees_with_the_gguf_package(smollm2_path):
    info = pla.read_gguf_info(smollm2_path)
    reader = gguf.GGUFReader(str(smollm2_path))
    assert info.n_tensors == len(reader.tensors)
    assert info.n_params == sum(int(np.prod(t.shape)) for t in reader.tensors)
    assert info.architecture == reader.fields["general.architecture"].contents()
    assert info.name == reader.fields["general.name"].contents()
    assert info.context_length == reader.fields["llama.context_length"].contents()
    assert info.n_vocab == len(reader.fields["tokenizer.ggml.tokens"].contents())
    assert info.chat_template == reader.fields["tokenizer.chat_template"].contents()
    file_type = reader.fields["general.file_type"].contents()
    assert info.quantization == gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_")


def test_the_header_agrees_with_llama_cpp(smollm2, smollm2_path):
    info = pla.read_gguf_info(smollm2_path)
    assert (info.architecture, info.context_length, info.n_vocab) == (
        smollm2.architecture,
        smollm2.n_ctx_train,
        smollm2.n_vocab,
    )
    assert info.size_bytes == smollm2_path.stat().st_size


def test_a_requantized_copy_reports_its_new_type(smollm2_q8_path):
    assert pla.read_gguf_info(smollm2_q8_path).quantization == "Q8_0"


def test_the_tiny_f32_model_reports_f32_and_its_context(tiny_path):
    info = pla.read_gguf_info(tiny_path)
    assert (info.architecture, info.quantization, info.context_length) == ("llama", "F32", 2048)


def test_type_names_are_those_of_llama_cpp():
    """The tables name llama.cpp's numbers as the gguf package (llama.cpp's own) does."""
    for number, name in FILE_TYPES.items():
        assert gguf.LlamaFileType(number).name.removeprefix("MOSTLY_").replace("ALL_", "") == name
    for number, name in TENSOR_TYPES.items():
        assert gguf.GGMLQuantizationType(number).name == name


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ValueError, match="is not a GGUF file"):
        pla.read_gguf_info(path)


def test_a_truncated_header_is_refused(tmp_path, smollm2_path):
    path = tmp_path / "cut.gguf"
    path.write_bytes(smollm2_path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="is truncated or corrupt"):
        pla.read_gguf_info(path)


def test_a_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        pla.read_gguf_info(tmp_path / "absent.gguf")


def test_sizes_and_counts_read_as_people_write_them():
    assert [format_params(n) for n in (134_515_008, 1_543_714_304, 999, 7_241_732_096)] == [
        "135M",
        "1.54B",
        "999",
        "7.24B",
    ]
    assert [format_size(n) for n in (512, 98_362_432, 4_683_073_184)] == [
        "512 B",
        "93.8 MiB",
        "4.4 GiB",
    ]
