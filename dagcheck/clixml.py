"""Deserialization of CLIXML, the one place where XML becomes objects.

psrpcore's deserializer is used for both sources: objects that arrive over PSRP (pypsrp hands us
the raw <Obj> of each output) and Export-Clixml files saved from real servers. pypsrp 0.9's own
deserializer cannot rebuild generic List`1 values (ServerComponentState.LocalStates arrives as raw
XML), which is why it is not used for the data.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from psrpcore.types import PSCryptoProvider, deserialize, deserialize_clixml

from dagcheck.remote.guard import refuse_dtd


class _NoSecureStrings(PSCryptoProvider):
    """Exchange output carries no SecureString; refuse loudly rather than guess."""

    def decrypt(self, value: str) -> str:
        raise ValueError("SecureString values are not expected in Exchange cmdlet output")

    def encrypt(self, value: str) -> str:
        raise ValueError("SecureString values are not expected in Exchange cmdlet output")


CIPHER = _NoSecureStrings()


def from_element_text(xml: str) -> Any:
    """One serialized object (an <Obj> or primitive element) as sent in a PIPELINE_OUTPUT message. A DTD is
    refused unparsed (xml.etree would expand its entities)."""
    refuse_dtd(xml, "an output object from the server")
    return deserialize(ET.fromstring(xml), CIPHER)


def from_file(path: str | Path) -> list[Any]:
    """Every object of an Export-Clixml file (a BOM and the <Objs> wrapper are fine)."""
    return from_clixml_text(Path(path).read_text(encoding="utf-8-sig"), str(path))


def from_clixml_text(text: str, origin: str = "saved data") -> list[Any]:
    """Every object of an <Objs> document (Export-Clixml's, or one saved by --save)."""
    refuse_dtd(text, origin)
    result = deserialize_clixml(text, CIPHER)
    return result if isinstance(result, list) else [result]
