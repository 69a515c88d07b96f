from cred_helper.fastkey import cache_dir_for, fast_key, flag_value


def test_flag_value_forms():
    assert flag_value(["--cache-dir", "/a", "--cache-dir=/b"], "--cache-dir") == "/b"
    assert flag_value(["--cache-dir"], "--cache-dir") is None
    assert flag_value(["--", "--cache-dir=/x"], "--cache-dir") is None


def test_cache_dir_precedence():
    env = {"HOME": "/h", "XDG_CACHE_HOME": "/x"}
    assert cache_dir_for([], env) == "/x/cred-helper"
    assert cache_dir_for([], {**env, "CRED_HELPER_CACHE_DIR": "/e"}) == "/e"
    assert cache_dir_for(["--cache-dir=/f"], {**env, "CRED_HELPER_CACHE_DIR": "/e"}) == "/f"


def test_fast_key_covers_arguments_environment_and_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.toml"
    env = {"HOME": str(tmp_path), "CRED_HELPER_CONFIG": str(config)}
    key = fast_key(["--ttl=30m"], env)
    assert fast_key(["--ttl=30m"], env) == key
    assert fast_key(["--ttl=31m"], env) != key
    assert fast_key(["--ttl=30m"], {**env, "KUBERNETES_EXEC_INFO": "{}"}) != key
    assert fast_key(["--ttl=30m"], {**env, "CRED_HELPER_CLUSTER": "x"}) != key
    config.write_text("[clusters.x]\n")
    assert fast_key(["--ttl=30m"], env) != key
