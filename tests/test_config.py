"""lstsd_edu.config: every setting checked once against its rule, and the same settings on every
command that trains."""

import dataclasses

import pytest

from lstsd_edu.cli import build_parser
from lstsd_edu.config import Config, check_setting, settings
from lstsd_edu.errors import ConfigError
from lstsd_edu.experiments import PRESETS, preset


@pytest.mark.parametrize(
    "overrides, parameter",
    [
        (dict(w_long=1.2), "w_long"),
        (dict(w_short=-0.1), "w_short"),
        (dict(w_long=0.7, w_short=0.6), "w_long \\+ w_short"),
        (dict(lag=0), "lag"),
        (dict(lag=2.5), "lag"),
        (dict(temperature=0.0), "temperature"),
        (dict(long_mode="cyclic"), "long_mode"),
        (dict(storage="sparse"), "storage"),
        (dict(dataset="imagenet"), "dataset"),
        (dict(model="transformer9000"), "model"),
        (dict(noise=1.0), "noise"),
        (dict(noise_kind="random"), "noise_kind"),
        (dict(device="tpu"), "device"),
        (dict(epochs=0), "epochs"),
        (dict(width=0), "width"),
        (dict(te_rampup=1.5), "te_rampup"),
    ],
)
def test_bad_settings_fail_early_naming_the_field(overrides, parameter):
    with pytest.raises(ConfigError, match=parameter):
        Config(**overrides).validate()


def test_every_field_has_help_and_the_presets_are_valid():
    for f in dataclasses.fields(Config):
        assert f.metadata["help"] and f.metadata["group"]
    for name, config in PRESETS.items():
        assert config.validate() is config, name


def test_check_setting_uses_the_fields_rule():
    check_setting("lr", 0.1)
    with pytest.raises(ConfigError, match="lr must be a number in \\(0, 10\\]"):
        check_setting("lr", 0.0)


def test_preset_applies_overrides_and_refuses_unknown_ones():
    config = preset("mnist1d", lag=7, w_long=None)  # None: keep the preset's value
    assert config.lag == 7 and config.w_long == PRESETS["mnist1d"].w_long
    with pytest.raises(ConfigError, match="preset overrides must be Config fields; got lagg"):
        preset("mnist1d", lagg=7)


def flags(parser, command):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {a.dest: a.option_strings for a in sub._actions if a.dest in {f.name for f in settings()}}


def test_compare_and_train_take_every_setting_as_a_flag():
    parser = build_parser()
    compare, train = flags(parser, "compare"), flags(parser, "train")
    assert compare == train
    assert set(compare) == {f.name for f in dataclasses.fields(Config)}
    assert compare["w_long"] == ["--w-long", "--long-weight"] and compare["te_decay"] == ["--te-decay"]


def test_flags_become_the_config():
    from lstsd_edu.cli import config_from

    args = build_parser().parse_args(["train", "--dataset", "digits", "--pskd-alpha", "0.5", "--width", "8"])
    config = config_from(args)
    assert (config.dataset, config.pskd_alpha, config.width) == ("digits", 0.5, 8)
    assert (config.lr, config.batch_size) == (PRESETS["digits"].lr, PRESETS["digits"].batch_size)


def test_each_methods_own_settings_are_config_fields_in_its_group():
    from lstsd_edu.methods import METHODS

    declared = {name: cls.name for cls in METHODS.values() for name in cls.settings}
    assert declared  # the peers and label smoothing declare theirs
    names = [f.name for f in dataclasses.fields(Config)]
    assert names[-len(declared) :] == list(declared)  # after the run's own settings, in registry order
    for name, method in declared.items():
        spec, field = METHODS[method].settings[name], Config.__dataclass_fields__[name]
        assert field.default == spec.default and field.metadata["rule"] is spec.rule
        assert field.metadata["group"] == method and field.metadata["help"] == f"{method}: {spec.help}"
    assert Config().pskd_alpha == METHODS["pskd"].settings["pskd_alpha"].default


def test_a_setting_declared_twice_is_refused(monkeypatch):
    from lstsd_edu import config
    from lstsd_edu.errors import Setting
    from lstsd_edu.methods import METHODS, Method

    class Clash(Method):
        name = "clash"
        settings = {"lag": Setting(3, "a second lag")}  # the run already has `lag`

    monkeypatch.setitem(METHODS, "clash", Clash)
    with pytest.raises(TypeError, match="Clash declares the setting 'lag'"):
        config._method_fields()
