<#
  Registers the nightly dagcheck health run in Windows Task Scheduler (06:00 daily).
  Assumes the checkout in C:\dagcheck installed with: py -m venv .venv; .venv\Scripts\pip install -e .
  Reports: C:\dagcheck\reports (summary.html, dagcheck.html, history\); log: C:\dagcheck\logs\nightly.log
  Credentials: set as the task account's environment (never in this script or the inventory).
  Not run here (no Windows in the test environment).
#>
$root = 'C:\dagcheck'
New-Item -ItemType Directory -Force -Path "$root\logs" | Out-Null
$command = "& '$root\.venv\Scripts\dagcheck.exe' health --inventory '$root\inventory\prod.yml' --reports-dir '$root\reports' *>> '$root\logs\nightly.log'"
$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument "-NoProfile -NonInteractive -Command $command" -WorkingDirectory $root
$trigger = New-ScheduledTaskTrigger -Daily -At 06:00
$settings = New-ScheduledTaskSettingsSet -StartWhenAvailable -ExecutionTimeLimit (New-TimeSpan -Hours 2)
Register-ScheduledTask -TaskName 'dagcheck nightly' -Action $action -Trigger $trigger -Settings $settings `
    -User 'CONTOSO\svc-dagcheck' -Password (Read-Host 'Password for CONTOSO\svc-dagcheck') -RunLevel Limited
