"""A Postfix that applies its default per-client limits to loopback too, as
a provider's server applies them to every client: by default
``smtpd_client_event_limit_exceptions`` is ``$mynetworks``, which exempts
127.0.0.1; here it is empty, so ``smtpd_client_connection_count_limit``
(50 by default) counts the test's connections."""

import os

from .postfix import Postfix


class LimitedPostfix(Postfix):
    def _write_tree(self):
        super()._write_tree()
        # anvil(8) does the counting; it is in the default master.cf.
        with open(os.path.join(self.config_dir, "main.cf"), "a", encoding="utf-8") as fp:
            fp.write("\nsmtpd_client_event_limit_exceptions =\n")
