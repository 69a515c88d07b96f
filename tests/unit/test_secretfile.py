import os

import pytest

from cred_helper.errors import CredHelperError, UsageError
from cred_helper.kubeconfig import read_file
from cred_helper.secretfile import UnsafeSecretFile, problem, read_secret


def _file(tmp_path, mode):
    path = tmp_path / "secret"
    path.write_text("s3cret\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_files_are_read(tmp_path, mode):
    assert read_secret(str(_file(tmp_path, mode)), "token file", "--x") == b"s3cret\n"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620])
def test_files_open_to_group_or_others_are_refused(tmp_path, mode):
    path = _file(tmp_path, mode)
    with pytest.raises(UnsafeSecretFile) as err:
        read_secret(str(path), "token file", "--bootstrap-token-file")
    assert str(path) in err.value.message and f"mode {mode:04o}" in err.value.message
    assert err.value.message.startswith("--bootstrap-token-file: token file ")
    assert err.value.hint == f"chmod 600 {path} (for a Kubernetes Secret volume: defaultMode: 0400)"
    assert "s3cret" not in err.value.render()


def test_a_foreign_owner_is_refused(tmp_path):
    st = os.stat(_file(tmp_path, 0o600))
    foreign = os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, os.geteuid() + 1,
                              st.st_gid, st.st_size, 0, 0, 0))
    assert "not by you or root" in problem(foreign)
    root = os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, 0,
                           st.st_gid, st.st_size, 0, 0, 0))
    assert problem(root) is None  # a Kubernetes Secret volume's files belong to root


def test_a_symlink_to_a_private_file_is_followed(tmp_path):
    # A Kubernetes Secret volume is made of symlinks (token -> ..data/token).
    link = tmp_path / "link"
    link.symlink_to(_file(tmp_path, 0o400))
    assert read_secret(str(link), "token file", "--x") == b"s3cret\n"


def test_not_a_regular_file(tmp_path):
    with pytest.raises(CredHelperError, match="not a regular file"):
        read_secret(str(tmp_path), "token file", "--x")


def test_read_file_secret_path(tmp_path):
    path = _file(tmp_path, 0o644)
    assert read_file(str(path), "CA bundle", "--certificate-authority") == b"s3cret\n"
    with pytest.raises(UnsafeSecretFile, match="open to group or others"):
        read_file(str(path), "client secret", "--oidc-client-secret-file", secret=True)
    with pytest.raises(UsageError, match="cannot read client secret"):
        read_file(str(tmp_path / "nope"), "client secret", "--x", secret=True)


def test_a_pipe_is_read(tmp_path):
    # `--oidc-client-secret-file=<(pass show idp)` hands over a pipe.
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"from-a-pipe\n")
    os.close(write_fd)
    try:
        assert read_secret(f"/proc/self/fd/{read_fd}", "client secret", "--x") == \
            b"from-a-pipe\n"
    finally:
        os.close(read_fd)
