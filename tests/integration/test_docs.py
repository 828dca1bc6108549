"""The documentation stands alone and stays true (no broker needed):

- every file the docs, README and code comments point to is in the repository, and none
  points outside it;
- the settings docs/CONFIG.md lists under "Reloading (SIGHUP)" are exactly those an
  integration test proves to reload (RELOAD_PROOF below), and no document says of one of
  them that it applies at the next start."""

import importlib
import re
import subprocess
import unittest

from wharf_fixture import REPO_ROOT

# Each setting docs/CONFIG.md says a reload applies, and the test that shows it.
RELOAD_PROOF = {
    "auth": "test_auth.AuthReloadTest.test_sighup_replaces_users_and_rules_and_keeps_live_connections",
    "log_level": "test_admin_api.ReloadTest.test_log_levels_per_module_are_reloaded",
    "log_levels": "test_admin_api.ReloadTest.test_log_levels_per_module_are_reloaded",
    "log_format": "test_admin_api.ReloadTest.test_log_levels_per_module_are_reloaded",
    "mqtt": "test_overload.OverloadTest.test_reloaded_limits_apply_to_new_connections_and_keep_the_open_ones",
    "listeners": "test_admin_api.ReloadTest.test_listeners_added_dropped_and_changed_while_their_connections_go_on",
    "queue_api.credentials": "test_admin_api.ReloadTest.test_queue_api_credentials_rate_and_admin_users_are_reloaded",
    "queue_api.max_requests_per_second":
        "test_admin_api.ReloadTest.test_queue_api_credentials_rate_and_admin_users_are_reloaded",
    "bridge": "test_bridge.BridgeReloadTest.test_sighup_replaces_bindings_and_keeps_connections",
}


# A team's shared folder, or a path of one machine (written so that it does not match itself).
OUTSIDE = re.compile(r"\.\./shared/|\bshared/[a-z_-]+\.md|/" + "work/")


def tracked_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def reload_section():
    text = (REPO_ROOT / "docs" / "CONFIG.md").read_text()
    start = text.index("## Reloading (SIGHUP)")
    return text[start:text.index("\n## ", start + 1)]


class DocsTest(unittest.TestCase):

    def test_references_stay_inside_the_repository(self):
        files = set(tracked_files())
        self.assertTrue(files, "not a git checkout")
        pointer = re.compile(r"\b((?:docs|scripts|packaging|bench|tests|config|core|gateway|session|tls|app|auth)"
                             r"/[A-Za-z0-9_./-]+\.(?:md|sh|py|yaml|service\.in|h|cc))\b")
        for path in files:
            if not path.endswith((".md", ".h", ".cc", ".py", ".sh", ".yaml", ".txt")):
                continue
            text = (REPO_ROOT / path).read_text(errors="replace")
            with self.subTest(file=path):
                outside = OUTSIDE.search(text)
                self.assertIsNone(outside, "points outside the repository: %r" % (outside and outside.group(0)))
                for ref in pointer.findall(text):
                    if ref.startswith("tests/") and "*" in ref:
                        continue
                    self.assertTrue(ref.rstrip(".") in files, "names %s, which the repository does not have" % ref)

    def test_the_reload_list_is_what_the_tests_prove(self):
        section = reload_section()
        documented = re.findall(r"^- `([a-z_.]+)`", section, re.MULTILINE)
        documented += re.findall(r"^- `log_level`, `([a-z_]+)` and `([a-z_]+)`", section, re.MULTILINE)[0]
        self.assertEqual(sorted(set(documented)), sorted(RELOAD_PROOF))
        for setting, proof in RELOAD_PROOF.items():
            module, cls, method = proof.split(".")
            with self.subTest(setting=setting):
                self.assertTrue(hasattr(getattr(importlib.import_module(module), cls), method), proof)

    def test_no_document_says_a_reloaded_setting_waits_for_a_restart(self):
        # A sentence about the next start may name a setting only to exclude it ("the rest
        # of `queue_api`"); naming what a reload applies there is the contradiction.
        names = {setting.split(".")[-1] for setting in RELOAD_PROOF}
        for path in [p for p in tracked_files() if p.endswith(".md")]:
            text = (REPO_ROOT / path).read_text()
            for sentence in re.split(r"(?<=[.;])\s", text):
                if not re.search(r"(apply|applies|take effect|takes effect)\s+at\s+the\s+next\s+start", sentence):
                    continue
                named = [n for n in names if re.search(r"(?<![\w.])%s(?![\w.])" % re.escape(n), sentence, re.I)]
                with self.subTest(file=path):
                    self.assertEqual(named, [], "says %s waits for the next start: %r" % (named, sentence))


if __name__ == "__main__":
    unittest.main()
