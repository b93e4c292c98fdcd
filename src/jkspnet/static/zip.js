// Every photo's result in one .zip, built in the page: the results are PNGs, compressed already,
// so each is stored as it is (method 0), and a zip then needs only a CRC-32 and its headers
// (PKWARE's APPNOTE: local headers, the files, a central directory, its end record).
"use strict";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// The date and time as MS-DOS writes them, which is what a zip holds.
function dosTime(now) {
  const time = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
  const date = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  return { time, date };
}

// A zip of files [{name, blob}], names as UTF-8 (flag bit 11).
export async function zipOf(files) {
  const encoder = new TextEncoder();
  const { time, date } = dosTime(new Date());
  const parts = [];
  const directory = [];
  let offset = 0;
  for (const { name, blob } of files) {
    const data = new Uint8Array(await blob.arrayBuffer());
    const title = encoder.encode(name);
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    const entry = new DataView(new ArrayBuffer(46));
    // the fields both headers share, at their own offsets
    for (const [view, at] of [[local, 4], [entry, 6]]) {
      view.setUint16(at, 20, true); // version needed: 2.0
      view.setUint16(at + 2, 0x0800, true); // names in UTF-8
      view.setUint16(at + 4, 0, true); // stored
      view.setUint16(at + 6, time, true);
      view.setUint16(at + 8, date, true);
      view.setUint32(at + 10, crc, true);
      view.setUint32(at + 14, data.length, true); // compressed size
      view.setUint32(at + 18, data.length, true); // size
      view.setUint16(at + 22, title.length, true);
    }
    local.setUint32(0, 0x04034b50, true);
    entry.setUint32(0, 0x02014b50, true);
    entry.setUint16(4, 20, true); // made by version 2.0
    entry.setUint32(42, offset, true); // where its local header is
    parts.push(local, title, data);
    directory.push(entry, title);
    offset += 30 + title.length + data.length;
  }
  const size = directory.reduce((total, part) => total + part.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(12, size, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...directory, end], { type: "application/zip" });
}
