; Included by electron-builder's NSIS installer (electron-builder.yml → nsis.include).
;
; A farm PC should get its agent back after a reboot without anyone opening FarmLink. The installer
; is per-user and runs without administrator rights, so it cannot register anything that starts
; before sign-in (a boot-time scheduled task or a Windows service needs an administrator: see
; README → Running as a service → Windows). What it can do is what the tray's "Start at login"
; does: a login item for this user that starts FarmLink in the tray (--hidden), which hosts the
; agent, or attaches to one already running. The value name is the app's AppUserModelId (= appId),
; the name Electron's app.setLoginItemSettings() uses, so the tray's checkbox shows and changes
; this same entry.
;
; Only on a first install and a real uninstall: an update leaves the person's choice as it was.
; Not run here: building NSIS needs downloads this repository's machines cannot make.

!macro customInstall
  ${ifNot} ${isUpdated}
    WriteRegStr HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "${APP_ID}" '"$appExe" --hidden'
  ${endIf}
!macroend

!macro customUnInstall
  ${ifNot} ${isUpdated}
    DeleteRegValue HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "${APP_ID}"
  ${endIf}
!macroend
