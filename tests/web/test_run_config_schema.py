"""Every pretraining setting the service accepts is documented in the schema with its bounds."""

from drf_spectacular.generators import SchemaGenerator

from labeling.config import PRETRAIN_LIMITS, PRETRAIN_OTHER_KEYS


def test_every_run_config_key_is_in_the_schema_with_its_bounds():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    config = schema["components"]["schemas"]["PretrainConfig"]["properties"]
    assert set(config) == set(PRETRAIN_LIMITS) | set(PRETRAIN_OTHER_KEYS)
    for key, (low, high) in PRETRAIN_LIMITS.items():
        assert (config[key]["minimum"], config[key]["maximum"]) == (low, high), key
    assert config["time_budget_s"]["minimum"] == 10 and config["projector"]["maxItems"] == 3
    start = schema["components"]["schemas"]["RunStart"]["properties"]
    assert start["config"]["$ref"].endswith("/PretrainConfig")
