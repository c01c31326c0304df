"""ModelInfer's own request reader agrees with protobuf's parser on every message, valid or not,
and hands the raw contents over as views of the received bytes."""

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from service.grpc.messages import ReceivedModelInfer, read_infer_request
from service.grpc.proto import grpc_predict_v2_pb2 as pb


def message(raw: list[bytes], model: str = "mnist_mlp", shape: tuple = (1, 28, 28)):
    request = pb.ModelInferRequest(model_name=model, model_version="7", id="call-1")
    request.parameters["priority"].int64_param = 3
    request.inputs.add(name="image", datatype="UINT8", shape=list(shape))
    request.outputs.add(name="probabilities")
    request.raw_input_contents.extend(raw)
    return request


def parsed_like_protobuf(received: ReceivedModelInfer, data: bytes) -> bool:
    """The reader's answer is protobuf's parse of the same bytes, split in two."""
    expected = pb.ModelInferRequest.FromString(data)
    raw = [bytes(view) for view in received.raw_input_contents]
    if raw != list(expected.raw_input_contents):
        return False
    del expected.raw_input_contents[:]
    return received.message == expected and received.size == len(data)


def test_raw_contents_are_views_of_the_received_bytes_and_the_rest_is_parsed() -> None:
    data = message([b"\x01" * 784, b"", b"\x02" * 3]).SerializeToString()
    received = read_infer_request(data)
    assert [bytes(view) for view in received.raw_input_contents] == [
        b"\x01" * 784,
        b"",
        b"\x02" * 3,
    ]
    assert all(view.obj is data for view in received.raw_input_contents)
    assert list(received.message.raw_input_contents) == []
    assert received.message.model_name == "mnist_mlp"
    assert received.message.parameters["priority"].int64_param == 3
    assert list(received.message.inputs[0].shape) == [1, 28, 28]
    assert parsed_like_protobuf(received, data)


def test_an_unknown_group_is_skipped_as_protobuf_skips_it() -> None:
    data = message([b"\x05" * 9]).SerializeToString() + b"\x9b\x06\x08\x01\x9c\x06"
    received = read_infer_request(data)
    assert [bytes(view) for view in received.raw_input_contents] == [b"\x05" * 9]
    assert parsed_like_protobuf(received, data)


def test_fields_in_any_order_and_repeated_scalars_merge_as_protobuf_merges_them() -> None:
    first = message([b"\x01" * 4], model="first").SerializeToString()
    second = message([b"\x02" * 4], model="second").SerializeToString()
    received = read_infer_request(first + second)
    assert received.message.model_name == "second"
    assert len(received.message.inputs) == 2
    assert [bytes(view) for view in received.raw_input_contents] == [b"\x01" * 4, b"\x02" * 4]
    assert parsed_like_protobuf(received, first + second)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",  # a varint that never ends
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a varint over 64 bits
        b"\x3a\x05abc",  # raw contents declared longer than what follows
        b"\x3a",  # raw contents with no length
        b"\x0a\xff\xff\xff\xff\x0f",  # a model name longer than the message
        b"\x0b",  # a group (wire type 3) that never ends
        b"\x0f",  # wire type 7, which does not exist
        b"\x00",  # field number 0
    ],
)
def test_malformed_bytes_raise_protobufs_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError, match=r"inference\.ModelInferRequest"):
        read_infer_request(data)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.lists(st.binary(max_size=300), max_size=3),
    cut=st.integers(min_value=0, max_value=2_000),
    noise=st.binary(max_size=8),
)
def test_any_prefix_of_a_message_with_noise_is_read_as_protobuf_reads_it(
    raw: list[bytes], cut: int, noise: bytes
) -> None:
    data = message(raw).SerializeToString()[:cut] + noise
    try:
        expected = pb.ModelInferRequest.FromString(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            read_infer_request(data)
        return
    assert parsed_like_protobuf(read_infer_request(data), data), expected
