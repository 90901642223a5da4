<#
.SYNOPSIS
    Saves what dagcheck reads from Exchange into a folder that `dagcheck health --replay DIR` judges
    offline, for jump hosts that cannot reach WinRM.

.DESCRIPTION
    Run it in the Exchange Management Shell on a DAG member. For every server named (default: the
    members of this server's DAG) it writes DIR\<server>\<Cmdlet>.xml with Export-Clixml, the same
    layout `--save DIR` writes. The Windows-side data (Get-ClusterNode, the ExSetup.exe version, the
    registry, disk, service and IIS configuration command lines in winrs.json) can only be read on the server itself:
    run the script on each member with -LocalOnly to add them, into the same folder.

    It only reads. Copy the folder to the jump host and run:
        dagcheck health --replay DIR

    Not run by dagcheck's own tests (there is no Exchange here): tests/unit/remote/test_replay.py checks that the
    commands below are exactly the ones dagcheck collects, and replays the CSS-Exchange captures,
    which are Export-Clixml output in this same shape.

.EXAMPLE
    .\Export-DagcheckData.ps1 -Path C:\Temp\dagcheck-data
.EXAMPLE
    .\Export-DagcheckData.ps1 -Path \\fileserver\dagcheck-data -LocalOnly   # on each member
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)] [string] $Path,
    [string[]] $Server,
    [switch] $LocalOnly,
    [string[]] $Volume = @('C:')
)

$ErrorActionPreference = 'Stop'
$here = $env:COMPUTERNAME

function Save-Output([string] $Name, [string] $File, [scriptblock] $Read) {
    $folder = Join-Path $Path $Name.ToLowerInvariant()
    New-Item -ItemType Directory -Force -Path $folder | Out-Null
    try {
        # Depth 3 keeps nested values such as ServerComponentState.LocalStates
        & $Read | Export-Clixml -Path (Join-Path $folder "$File.xml") -Depth 3 -Encoding UTF8
    } catch {
        Write-Warning "$Name ${File}: $($_.Exception.Message) (dagcheck will report it as not in the saved data)"
    }
}

if (-not $LocalOnly) {
    if (-not $Server) {
        $dag = (Get-MailboxServer -Identity $here).DatabaseAvailabilityGroup
        $Server = (Get-DatabaseAvailabilityGroup -Identity $dag).Servers | ForEach-Object { $_.Name }
    }
    $vdirCmdlets = 'Get-OwaVirtualDirectory', 'Get-EcpVirtualDirectory', 'Get-WebServicesVirtualDirectory',
        'Get-AutodiscoverVirtualDirectory', 'Get-MapiVirtualDirectory', 'Get-OabVirtualDirectory',
        'Get-ActiveSyncVirtualDirectory', 'Get-PowerShellVirtualDirectory'
    foreach ($s in $Server) {
        Save-Output $s 'Get-ServerComponentState' { Get-ServerComponentState -Identity $s }
        Save-Output $s 'Get-MailboxDatabaseCopyStatus' { Get-MailboxDatabaseCopyStatus -Server $s }
        Save-Output $s 'Get-Queue' { Get-Queue -Server $s }
        Save-Output $s 'Test-ReplicationHealth' { Test-ReplicationHealth -Identity $s }
        Save-Output $s 'Test-ServiceHealth' { Test-ServiceHealth -Server $s }
        Save-Output $s 'Get-ExchangeServer' { Get-ExchangeServer -Identity $s }
        Save-Output $s 'Get-MailboxServer' { Get-MailboxServer -Identity $s }
        Save-Output $s 'Get-DatabaseAvailabilityGroup' { Get-DatabaseAvailabilityGroup -Status }
        Save-Output $s 'Get-MailboxDatabase' { Get-MailboxDatabase -Server $s -Status }
        Save-Output $s 'Test-MAPIConnectivity' { Test-MAPIConnectivity -Server $s }
        Save-Output $s 'Get-ClientAccessService' { Get-ClientAccessService -Identity $s }
        Save-Output $s 'Get-ReceiveConnector' { Get-ReceiveConnector -Server $s }
        Save-Output $s 'Get-ExchangeCertificate' { Get-ExchangeCertificate -Server $s }
        Save-Output $s 'Get-ServerHealth' { Get-ServerHealth -Identity $s }
        Save-Output $s 'Get-AuthConfig' { Get-AuthConfig }
        Save-Output $s 'Get-OutlookAnywhere' { Get-OutlookAnywhere -Server $s }
        foreach ($c in $vdirCmdlets) {
            Save-Output $s $c { & $c -Server $s -ShowMailboxVirtualDirectories }
        }
    }
}

# What only this server can read about itself.
Save-Output $here 'Get-ClusterNode' { Import-Module FailoverClusters; Get-ClusterNode }
Save-Output $here 'Get-Command.FileVersionInfo' { Get-Command ExSetup.exe | ForEach-Object FileVersionInfo }
Save-Output $here 'Get-Service' { Get-Service }
Save-Output $here 'Get-Date' { Get-Date }

$lines = @(
    'reg.exe query "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending"',
    'reg.exe query "HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"',
    'reg.exe query "HKLM\SYSTEM\CurrentControlSet\Control\Session Manager" /v PendingFileRenameOperations',
    'reg.exe query "HKLM\SOFTWARE\Microsoft\Updates\UpdateExeVolatile" /v Flags',
    'powershell.exe -NoProfile -NonInteractive -Command "Invoke-CimMethod -Namespace root\ccm\ClientSDK -ClassName CCM_ClientUtilities -MethodName DetermineIfRebootPending | Format-List RebootPending,IsHardRebootPending"',
    'reg.exe query "HKLM\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full" /v Release',
    'reg.exe query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion" /v CurrentBuildNumber',
    'sc.exe queryex type= service state= all',
    'type "%windir%\System32\inetsrv\config\applicationHost.config"',
    '%windir%\system32\inetsrv\appcmd.exe list site',
    '%windir%\system32\inetsrv\appcmd.exe list apppool',
    'netsh http show sslcert',
    'reg.exe query "HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols" /s',
    'reg.exe query "HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319"',
    'reg.exe query "HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319"',
    'reg.exe query "HKLM\SOFTWARE\Microsoft\.NETFramework\v2.0.50727"',
    'reg.exe query "HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v2.0.50727"'
) + ($Volume | ForEach-Object { "fsutil volume diskfree $_" })
$results = [ordered]@{}
foreach ($line in $lines) {
    $out = Join-Path $env:TEMP "dagcheck-out.txt"; $err = Join-Path $env:TEMP "dagcheck-err.txt"
    $p = Start-Process cmd.exe -ArgumentList '/c', $line -NoNewWindow -Wait -PassThru `
        -RedirectStandardOutput $out -RedirectStandardError $err
    $results[$line] = [ordered]@{ rc = $p.ExitCode; stdout = [IO.File]::ReadAllText($out); stderr = [IO.File]::ReadAllText($err) }
    Remove-Item $out, $err -ErrorAction SilentlyContinue
}
$folder = Join-Path $Path $here.ToLowerInvariant()
New-Item -ItemType Directory -Force -Path $folder | Out-Null
$results | ConvertTo-Json -Depth 3 | Set-Content -Path (Join-Path $folder 'winrs.json') -Encoding UTF8
Write-Host "saved under $Path; on the jump host: dagcheck health --replay <copy of $Path>"
