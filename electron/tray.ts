import { Menu, Tray, nativeImage, type MenuItemConstructorOptions } from 'electron';
import path from 'node:path';
import type { TrayAction, TrayModel } from '../agent/desktop/tray-model.js';

/**
 * Renders a TrayModel. Linux (libappindicator) only picks up menu changes when the menu is set
 * again, so the whole menu is rebuilt and re-set on every change; nothing happens when the model
 * did not change.
 */
export class TrayController {
  private readonly tray: Tray;
  private last = '';

  constructor(
    private readonly iconDir: string,
    private readonly onAction: (action: TrayAction) => void,
    onClick: () => void,
  ) {
    this.tray = new Tray(this.image('reconnecting'));
    this.tray.on('click', onClick);
  }

  render(model: TrayModel): void {
    const key = JSON.stringify(model);
    if (key === this.last) return;
    this.last = key;
    this.tray.setImage(this.image(model.icon));
    this.tray.setToolTip(model.tooltip);
    const template: MenuItemConstructorOptions[] = model.menu.map((item) => {
      switch (item.kind) {
        case 'separator':
          return { type: 'separator' };
        case 'label':
          return { label: item.label, enabled: false };
        case 'action':
          return { label: item.label, enabled: item.enabled, click: () => this.onAction(item.action) };
        case 'radio':
          return {
            type: 'radio',
            label: item.label,
            checked: item.checked,
            enabled: item.enabled,
            click: () => this.onAction(item.action),
          };
        case 'checkbox':
          return {
            type: 'checkbox',
            label: item.label,
            checked: item.checked,
            click: () => this.onAction(item.action),
          };
      }
    });
    this.tray.setContextMenu(Menu.buildFromTemplate(template));
  }

  destroy(): void {
    this.tray.destroy();
  }

  /** PNG on Linux and macOS (Electron picks the @2x file on HiDPI), ICO on Windows. */
  private image(tone: TrayModel['icon']) {
    const file = path.join(this.iconDir, `${tone}.${process.platform === 'win32' ? 'ico' : 'png'}`);
    return nativeImage.createFromPath(file);
  }
}
