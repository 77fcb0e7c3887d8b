"""A quick look at whether a `tfds` data set's download hosts answer, before `tfds` tries to download it.

Without network, `tfds` retries each download (10 times, with back-off) and fails after minutes. Connecting once to
each host the data set downloads from (its registered URLs, and Google Cloud Storage, which holds data sets `tfds`
prepared already) takes milliseconds when the name does not resolve and at most `PROBE_SECONDS` a host otherwise: the
download starts when one answers, and stops at once with one line when none does. Behind a proxy (`https_proxy`
and the like) the hosts are not reached directly, so nothing is probed.
"""

import socket
import urllib.parse
import urllib.request

from tfvae.data.errors import DataError

PROBE_SECONDS = 5.0
PREPARED_DATA_HOST = "storage.googleapis.com"  # tfds' bucket of prepared data sets (`try_download_gcs`)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def check_download_hosts(name, urls, advice=""):
    """Returns when one of the hosts of `urls` (or `PREPARED_DATA_HOST`) accepts a connection, or a proxy is set.

    Args:
        name: the data set, for the message.
        urls: the URLs it downloads from.
        advice: what to add to the message (the local sources tfvae reads instead).

    Raises:
        DataError: when no host answers.
    """
    if urllib.request.getproxies():
        return
    hosts = {(PREPARED_DATA_HOST, 443)}
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname:
            hosts.add((parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)))
    failure = None
    for host in sorted(hosts):
        try:
            socket.create_connection(host, timeout=PROBE_SECONDS).close()
            return
        except OSError as error:
            failure = error
    names = ", ".join(host for host, _ in sorted(hosts))
    raise DataError(f"Cannot download the tfds data set {name!r}: none of its download hosts ({names}) answers "
                    f"({failure}); this machine seems offline. {advice}".rstrip())
