#!/usr/bin/env bash
# Unpacks, without installing anything system-wide, the Debian 13 tools that
# Debian 12 lacks for the VK_KHR_cooperative_matrix GEMM: glslang 15 (to
# compile kernels/vulkan/shaders/gemm_coop_khr.comp) and Mesa 26's lavapipe
# from trixie-backports (a CPU Vulkan driver that has the extension, to run
# it), with their own C library. Everything goes under one folder:
#
#   bash scripts/khr_toolchain.sh [DIR]     # default $HOME/.cache/godiffuse/trixie
#
# and it prints the variables to use:
#   GODIFFUSE_GLSLANG="DIR/run DIR/root/usr/bin/glslang" go generate ./kernels/vulkan
#   VK_ICD_FILENAMES=DIR/lvp_icd.json DIR/run ./vulkan.test …   (a CGO_ENABLED=0 test binary)
# (VK_ICD_FILENAMES only for that command: the system's loader cannot load
# trixie's driver.)
# The binaries run through trixie's dynamic loader (DIR/run), so the
# system's C library is never mixed with trixie's.
set -euo pipefail
dir=${1:-$HOME/.cache/godiffuse/trixie}
mkdir -p "$dir"/{apt/lists/partial,apt/cache/archives/partial,debs,root}
dir=$(cd "$dir" && pwd)
cat >"$dir/apt/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
SRC
apt=(-o Dir::Etc::SourceList="$dir/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache"
	-o APT::Default-Release=trixie-backports -o APT::Sandbox::User=root)
if [ ! -x "$dir/root/usr/bin/glslang" ] || [ ! -e "$dir/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ]; then
	apt-get "${apt[@]}" update -qq
	# The packages and everything they depend on, less what only a system
	# (not a folder of libraries) needs.
	pkgs=$(apt-cache "${apt[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances glslang-tools spirv-tools mesa-vulkan-drivers libvulkan1 libc6 libstdc++6 |
		grep -v '^ ' | grep -v '<' | sort -u |
		grep -vxE 'debconf|perl-base|dpkg|libc-bin|tar|coreutils|base-files|bash|install-info|libcrypt1|mawk|sensible-utils|debianutils|cdebconf|libdebconfclient0')
	(cd "$dir/debs" && apt-get "${apt[@]}" download $pkgs >/dev/null)
	for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root"; done
fi
lib=$dir/root/usr/lib/x86_64-linux-gnu
cat >"$dir/run" <<RUN
#!/bin/sh
# Runs a program on trixie's C library and libraries from $dir/root.
exec $lib/ld-linux-x86-64.so.2 --library-path $lib "\$@"
RUN
chmod +x "$dir/run"
sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" \
	"$dir/root/usr/share/vulkan/icd.d/lvp_icd.json" >"$dir/lvp_icd.json"
echo "glslang: $("$dir/run" "$dir/root/usr/bin/glslang" --version | head -1)"
echo "lavapipe: $(ls "$dir"/debs/mesa-vulkan-drivers_*.deb | sed 's#.*/##')"
echo "export GODIFFUSE_GLSLANG=\"$dir/run $dir/root/usr/bin/glslang\""
echo "export GODIFFUSE_KHR_RUN=\"$dir/run\" GODIFFUSE_KHR_ICD=\"$dir/lvp_icd.json\""
