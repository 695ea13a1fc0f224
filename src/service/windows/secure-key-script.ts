/**
 * PowerShell that creates the secrets key and replaces its ACL with exactly SYSTEM and Administrators (by SID, so it
 * works on every display language), inheritance off. The installer runs it once; the connector itself sets the same
 * access list through RegSetKeySecurity before its first write (src/platform/windows/koffi-registry-api.ts), so
 * neither depends on the other. It carries no secret: only the key path travels to PowerShell, on stdin.
 */
export function secureKeyScript(key: string): string {
  const psPath = key.replace(/^HKLM\\/i, "HKLM:\\").replace(/'/g, "''");
  return [
    "$ErrorActionPreference = 'Stop'",
    `$path = '${psPath}'`,
    "if (-not (Test-Path $path)) { New-Item -Path $path -Force | Out-Null }",
    "$acl = New-Object System.Security.AccessControl.RegistrySecurity",
    "$acl.SetAccessRuleProtection($true, $false)",
    "foreach ($sid in 'S-1-5-18', 'S-1-5-32-544') {",
    "  $id = New-Object System.Security.Principal.SecurityIdentifier($sid)",
    "  $acl.AddAccessRule((New-Object System.Security.AccessControl.RegistryAccessRule($id, 'FullControl', 'ContainerInherit', 'None', 'Allow')))",
    "}",
    "$acl.SetOwner((New-Object System.Security.Principal.SecurityIdentifier('S-1-5-32-544')))",
    "Set-Acl -Path $path -AclObject $acl",
  ].join("\r\n");
}

export const POWERSHELL_ARGS = [
  "-NoLogo",
  "-NoProfile",
  "-NonInteractive",
  "-ExecutionPolicy",
  "Bypass",
  "-Command",
  "-",
];
