from __future__ import annotations

import pickle

import pytest

import magic_hour_async as mh
from magic_hour_async._exceptions import status_error


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, mh.BadRequestError),
        (401, mh.AuthenticationError),
        (402, mh.PaymentRequiredError),
        (403, mh.PermissionDeniedError),
        (404, mh.NotFoundError),
        (422, mh.UnprocessableEntityError),
        (429, mh.RateLimitError),
        (500, mh.ServerError),
        (502, mh.ServerError),
        (503, mh.ServerError),
        (504, mh.ServerError),
        (409, mh.APIStatusError),
    ],
)
def test_every_status_maps_to_its_exception(status: int, cls: type[mh.APIStatusError]) -> None:
    error = status_error(status, b'{"message": "Nope"}', {"x-req": "1"})
    assert type(error) is cls
    assert error.status_code == status
    assert error.message == "Nope"
    assert error.body == {"message": "Nope"}
    assert error.headers == {"x-req": "1"}
    assert str(error) == f"HTTP {status}: Nope"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("insufficient_credits", mh.InsufficientCreditsError),
        ("subscription_required", mh.SubscriptionRequiredError),
        ("plan_upgrade_required", mh.PlanUpgradeRequiredError),
        ("a_code_added_later", mh.PaymentRequiredError),
        (None, mh.PaymentRequiredError),
    ],
)
def test_402_maps_to_a_subclass_by_the_bodys_code(code: str | None, cls: type[mh.APIStatusError]) -> None:
    body = b'{"message": "Top up"}' if code is None else f'{{"code": "{code}", "message": "Top up"}}'.encode()
    error = status_error(402, body, {})
    assert type(error) is cls
    assert isinstance(error, mh.PaymentRequiredError)
    assert (error.code, error.message) == (code, "Top up")


def test_every_error_status_keeps_the_bodys_code_and_is_catchable_as_api_error() -> None:
    for status, code in [(400, "invalid_request"), (401, "unauthorized"), (404, "not_found"), (429, None)]:
        raw = b'{"message": "m"}' if code is None else f'{{"code": "{code}", "message": "m"}}'.encode()
        with pytest.raises(mh.ApiError) as caught:
            raise status_error(status, raw, {})
        assert (caught.value.status_code, caught.value.code) == (status, code)
    assert mh.ApiError is mh.APIStatusError
    assert status_error(400, b'{"code": 7, "message": "m"}', {}).code is None  # only strings are codes


def test_html_body_gives_a_short_readable_message() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"y" * 5000 + b"</body></html>"
    error = status_error(502, page, {})
    assert isinstance(error, mh.ServerError)
    assert error.message == "502 Bad Gateway"


def test_long_plain_body_is_cut_to_an_excerpt() -> None:
    error = status_error(500, b"oops " * 200, {})
    assert len(error.message) == 200
    assert error.message.endswith("...")


def test_empty_body_falls_back_to_the_reason_phrase() -> None:
    assert status_error(503, b"", {}, reason="Service Unavailable").message == "Service Unavailable"


def test_json_without_message_keeps_the_body() -> None:
    error = status_error(422, b'{"detail": "bad"}', {})
    assert error.body == {"detail": "bad"}
    assert error.message == '{"detail": "bad"}'


@pytest.mark.parametrize(
    "error",
    [
        mh.MagicHourError("m"),
        mh.ConfigurationError("c"),
        mh.ClientClosedError("closed"),
        mh.NotFoundError("nf", status_code=404, body={"message": "nf"}, headers={"a": "b"}),
        mh.RateLimitError("slow", body=None, headers={}, retry_after=1.5),
        mh.InsufficientCreditsError("broke", status_code=402, code="insufficient_credits"),
        mh.APIConnectionError("down"),
        mh.APITimeoutError("slow"),
        mh.ResponseDecodeError("bad"),
        mh.WaitTimeoutError("late", project=mh.VideoProject(id="v", status="queued")),
        mh.RenderError("failed", project=None, code="no_source_face"),
        mh.DownloadError("d"),
        mh.WebhookVerificationError("w"),
    ],
)
def test_exceptions_pickle_with_their_fields(error: mh.MagicHourError) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert vars(clone) == vars(error)
    assert str(clone) == str(error)


def test_builtin_bases_match_meaning() -> None:
    assert issubclass(mh.ConfigurationError, ValueError)
    assert issubclass(mh.APITimeoutError, TimeoutError)
    assert issubclass(mh.APITimeoutError, mh.APIConnectionError)
    assert issubclass(mh.WaitTimeoutError, TimeoutError)
    for name in mh.__all__:
        obj = getattr(mh, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, mh.MagicHourError)
            assert obj.__doc__ and obj.__doc__.strip()


def test_an_error_body_nested_too_deeply_is_kept_as_text() -> None:
    import pickle

    deep = b"[" * 500 + b"]" * 500  # decodes, but its repr and pickle would recurse 500 deep
    error = status_error(500, deep, {})
    assert isinstance(error, mh.ServerError)
    assert error.body == deep.decode()
    assert pickle.loads(pickle.dumps(error)).body == error.body
    shallow = status_error(500, b'{"message": "x", "detail": [[[1]]]}', {})
    assert shallow.body == {"message": "x", "detail": [[[1]]]}
