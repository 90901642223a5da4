"""Error records the lab writes, shaped like the ones PowerShell and Exchange write."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LabCmdletError(Exception):
    """A terminating or non-terminating error of a lab cmdlet, as PowerShell would report it."""

    message: str
    category: str  # ErrorCategory name, e.g. ObjectNotFound, InvalidArgument
    error_id: str  # FullyQualifiedErrorId
    exception_type: str = "System.Management.Automation.RuntimeException"
    target: str | None = None
    activity: str = ""

    def __str__(self) -> str:
        return self.message


def command_not_found(name: str) -> LabCmdletError:
    return LabCmdletError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
        "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
        "and try again.",
        "ObjectNotFound",
        "CommandNotFoundException",
        "System.Management.Automation.CommandNotFoundException",
        target=name,
    )


def parameter_not_found(cmdlet: str, parameter: str) -> LabCmdletError:
    return LabCmdletError(
        f"A parameter cannot be found that matches parameter name '{parameter}'.",
        "InvalidArgument",
        f"NamedParameterNotFound,{cmdlet}",
        "System.Management.Automation.ParameterBindingException",
        activity=cmdlet,
    )


def missing_parameter(cmdlet: str, parameter: str) -> LabCmdletError:
    # Remote sessions have no host to prompt for a mandatory parameter, so binding fails instead.
    return LabCmdletError(
        f"Cannot process command because of one or more missing mandatory parameters: {parameter}.",
        "InvalidArgument",
        f"MissingMandatoryParameter,{cmdlet}",
        "System.Management.Automation.ParameterBindingException",
        activity=cmdlet,
    )


def invalid_value(cmdlet: str, parameter: str, value: object, allowed: list[str]) -> LabCmdletError:
    return LabCmdletError(
        f"Cannot bind parameter '{parameter}'. Cannot convert value \"{value}\" to type. Error: "
        f'"Unable to match the identifier name {value} to a valid enumerator name. Specify one of the '
        f'following enumerator names and try again: {", ".join(allowed)}"',
        "InvalidArgument",
        f"CannotConvertArgumentNoMessage,{cmdlet}",
        "System.Management.Automation.ParameterBindingException",
        activity=cmdlet,
    )


def object_not_found(cmdlet: str, kind: str, identity: object) -> LabCmdletError:
    # Exchange's ManagementObjectNotFoundException text (shape of the English message).
    return LabCmdletError(
        f"The operation couldn't be performed because object '{identity}' couldn't be found on 'dc1.contoso.test'.",
        "NotSpecified",
        f"[Server=LAB,RequestId=00000000-0000-0000-0000-000000000000] {kind},{cmdlet}",
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        target=str(identity),
        activity=cmdlet,
    )
