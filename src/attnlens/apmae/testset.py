"""Test sets for `attnlens eval-apmae`: patterns of files a checkpoint never trained on and never picked its
best step on, rebuilt deterministically from the corpus (a fresh clone has no pattern cache).

Two kinds, chosen from the checkpoint's `training.json`:
- trained with a test split (`CacheSpec.test_percent` > 0): the first `test_windows` test-split windows of
  the stream its cache was built from, which are exactly the test windows that cache held;
- trained before the test split existed (its held-out share was its validation split and every other file
  of the stream it read was training): a `WindowManifest`, windows of files beyond the part of the stream
  its cache read, matched to the checkpoint by the cache spec and pattern counts its training recorded.
A test set is cached like training patterns (attnlens.apmae.cache), under `<data>/apmae-test/`. For another
target model's patterns (`eval-apmae --model`, attnlens.apmae.transfer) the same files are cut again in that
model's tokens, into a folder of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from attnlens.apmae.cache import CacheSpec, build_cache, cached_windows, read_spec, spec_windows
from attnlens.apmae.sources import Window, cut_at, cut_files, split_of, window_digest
from attnlens.errors import CorpusError

if TYPE_CHECKING:
    from attnlens.model import TargetModel

log = logging.getLogger(__name__)

RECORD = "eval_set.json"
JDK_HINT = (
    "install the JDK 17 sources (Debian/Ubuntu: `apt-get install openjdk-17-source`, which puts them at "
    "/usr/lib/jvm/openjdk-17/lib/src.zip)"
)


@dataclass(frozen=True)
class WindowManifest:
    """Windows named by (file, end token, target length), cut from the corpus as `--source windows` cuts
    them, for the checkpoints whose training record matches `trained_on`."""

    name: str
    description: str
    trained_on: dict[str, object]  # `cache_spec` (corpus aside) and pattern counts of the runs it serves
    windows: tuple[tuple[str, int, int], ...]
    digest: str  # `window_digest` of the windows as cut when the manifest was made

    @property
    def model(self) -> str:
        """The model whose tokens the windows' end positions count."""
        return str(self.trained_on["cache_spec"]["model"])  # type: ignore[index]

    def serves(self, info: dict[str, object]) -> bool:
        spec = dict(info.get("cache_spec") or {})  # type: ignore[call-overload]
        wanted = dict(self.trained_on["cache_spec"])  # type: ignore[call-overload]
        spec.pop("corpus", None)
        wanted.pop("corpus", None)
        counts = ("train_patterns", "heldout_patterns")
        return spec == wanted and all(info.get(key) == self.trained_on[key] for key in counts)


@dataclass(frozen=True)
class EvalSetPlan:
    """How to rebuild one checkpoint's test set."""

    name: str
    spec: CacheSpec  # of the test-set cache; `corpus` is where the training corpus was
    windows: int
    manifest: WindowManifest | None
    how: str  # one sentence for the report

    def folder(self, root: Path, corpus: Path) -> Path:
        """`root/<name>-<hash of the spec and corpus>`: another corpus or spec never reuses a set."""
        key = json.dumps(
            {**asdict(self.spec), "corpus": str(corpus), "windows": self.windows}, sort_keys=True
        )
        return root / f"{self.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def plan_for(info: dict[str, object]) -> EvalSetPlan | None:
    """The test set of the checkpoint whose `training.json` is `info`, or None when it cannot have one."""
    recorded = info.get("cache_spec")
    if not isinstance(recorded, dict):
        return None
    spec = CacheSpec(**recorded)
    for manifest in MANIFESTS:
        if manifest.serves(info):
            return EvalSetPlan(
                name=manifest.name,
                spec=replace(spec, selection=f"manifest:{manifest.name}"),
                windows=len(manifest.windows),
                manifest=manifest,
                how=manifest.description,
            )
    test_windows = info.get("test_windows")
    if spec.selection == "all" and spec.test_percent > 0 and isinstance(test_windows, int) and test_windows:
        slug = Path(spec.model).name.replace("/", "-")
        return EvalSetPlan(
            name=f"{slug}-test",
            spec=replace(spec, selection="test"),
            windows=test_windows,
            manifest=None,
            how=(
                f"the first {test_windows} test-split windows (file-hash buckets {spec.heldout_percent}-"
                f"{spec.heldout_percent + spec.test_percent - 1} of 0-99) of the stream the checkpoint's "
                "cache was built from: the test windows that cache held, never trained or selected on"
            ),
        )
    return None


def require_corpus(corpus: Path) -> None:
    if corpus.exists():
        return
    hint = JDK_HINT if "openjdk-17" in str(corpus) or corpus.name == "src.zip" else "put the corpus there"
    raise CorpusError(
        f"the test set is rebuilt from {corpus}, which is not on this machine: {hint}, or pass --corpus with "
        "its path."
    )


def read_record(folder: Path, spec: CacheSpec) -> dict[str, object] | None:
    """What a finished build recorded, or None when the folder holds no whole test set of `spec`."""
    if not (folder / RECORD).is_file():
        return None
    record = json.loads((folder / RECORD).read_text())
    if read_spec(folder) != spec or cached_windows(folder) != record["windows"]:
        return None
    return dict(record)


def eval_set_spec(plan: EvalSetPlan, corpus: Path) -> CacheSpec:
    return replace(plan.spec, corpus=str(corpus.resolve()))


def build_eval_set(
    target: TargetModel, plan: EvalSetPlan, folder: Path, *, corpus: Path, progress: bool = True
) -> dict[str, object]:
    """Cut the plan's windows from `corpus`, cache their patterns in `folder`, and record how the windows
    compare with the plan (files missing from this corpus, a different digest). Returns that record."""
    from tqdm import tqdm

    require_corpus(corpus)
    spec = eval_set_spec(plan, corpus)
    if target.info.name != spec.model:
        raise CorpusError(f"this test set needs the patterns of {spec.model}, not of {target.info.name}.")
    problems: list[str] = []
    if plan.manifest is not None and spec.model != plan.manifest.model:
        # Another model's patterns of the manifest's files (attnlens.apmae.transfer): its token positions
        # are the manifest model's, so each file is cut afresh; there is no digest to match.
        windows, problems = cut_files(
            target,
            corpus,
            [(name, span) for name, _, span in plan.manifest.windows],
            context_tokens=spec.source_length,
            seed=spec.seed,
            max_file_bytes=spec.max_file_bytes,
        )
        matches = len(windows) == plan.windows
    elif plan.manifest is not None:
        windows, problems = cut_at(
            target,
            corpus,
            plan.manifest.windows,
            context_tokens=spec.source_length,
            max_file_bytes=spec.max_file_bytes,
        )
        matches = window_digest(windows) == plan.manifest.digest
    else:
        bar = tqdm(total=plan.windows, desc="finding test windows", unit="window", disable=not progress)
        windows = list(islice(_test_windows(target, corpus, spec, bar), plan.windows))
        bar.close()
        matches = len(windows) == plan.windows
    if problems:
        log.warning("%d test windows could not be cut: %s", len(problems), "; ".join(problems[:5]))
    if not matches:
        log.warning("the test windows cut from %s differ from the ones the checkpoint's figures used", corpus)
    done = build_cache(
        target, corpus, folder, spec=spec, windows=len(windows), stream=iter(windows), progress=progress
    )
    record: dict[str, object] = {
        "how": plan.how,
        "windows": done,
        "planned_windows": plan.windows,
        "matches_plan": matches,
        "problems": problems,
    }
    (folder / RECORD).write_text(json.dumps(record, indent=2))
    return record


def _test_windows(target: TargetModel, corpus: Path, spec: CacheSpec, bar: object) -> Iterator[Window]:
    for window in spec_windows(target, corpus, spec):
        if split_of(window.file_path, spec.heldout_percent, spec.test_percent) == "test":
            bar.update(1)  # type: ignore[attr-defined]
            yield window


# The default checkpoint (SmolLM2-135M-Instruct, JDK 17) was trained before the test split existed: its
# 10% held-out share picked the best step and every other file of the first 576 windows was training, so no
# hash range is untouched. Its test set is windows 576-703 of the same stream (seed 0, files in a seeded
# random order, one window per file), files its cache never read. Made, and checked against the training
# record, by `scripts/apmae/make_test_manifest.py`; see the model card.
# BEGIN MANIFEST smollm2-jdk17-unseen
SMOLLM2_JDK17_UNSEEN = WindowManifest(
    name="smollm2-jdk17-unseen",
    description=(
        "windows 576-703 of the `--source windows` "
        "stream over the JDK 17 sources (seed 0, one window per file in a seeded random order), whose "
        "first 576 windows were the checkpoint's whole pattern cache: files its "
        "training and its best-step selection never saw"
    ),
    trained_on={
        "cache_spec": {
            "model": "smollm2",
            "corpus": "/usr/lib/jvm/openjdk-17/lib/src.zip",
            "source": "windows",
            "source_length": 256,
            "image_size": 64,
            "heads_fraction": 1.0,
            "heldout_percent": 10,
            "seed": 0,
            "max_file_bytes": 1000000,
        },
        "train_patterns": 93420,
        "heldout_patterns": 9720,
    },
    windows=(
        ("java.desktop/javax/swing/DefaultListCellRenderer.java", 2742, 4),
        ("java.base/com/sun/crypto/provider/PCBC.java", 1570, 7),
        ("jdk.hotspot.agent/sun/jvm/hotspot/oops/LineNumberTableElement.java", 389, 10),
        ("jdk.hotspot.agent/sun/jvm/hotspot/runtime/VMReg.java", 671, 3),
        ("java.base/javax/security/auth/spi/package-info.java", 273, 6),
        ("java.xml/com/sun/org/apache/xml/internal/dtm/ref/CoroutineParser.java", 1420, 6),
        ("java.desktop/javax/swing/plaf/multi/MultiFileChooserUI.java", 2232, 9),
        ("java.base/java/lang/CharacterData.java", 833, 9),
        ("jdk.compiler/com/sun/tools/javac/resources/launcher_ja.java", 768, 6),
        ("java.desktop/java/awt/image/ImageProducer.java", 853, 3),
        ("jdk.jlink/jdk/tools/jlink/internal/plugins/VersionPropsPlugin.java", 1075, 9),
        ("java.xml/javax/xml/xpath/XPathExpressionException.java", 329, 8),
        ("java.desktop/javax/sound/midi/SoundbankResource.java", 492, 6),
        ("java.desktop/sun/java2d/pipe/SolidTextRenderer.java", 275, 6),
        ("jdk.jshell/jdk/jshell/ReplResolve.java", 349, 9),
        ("jdk.localedata/sun/text/resources/ext/FormatData_sl.java", 535, 5),
        ("jdk.jartool/sun/tools/jar/resources/jar_zh_HK.java", 2170, 4),
        ("jdk.localedata/sun/util/resources/cldr/ext/CurrencyNames_mai.java", 1242, 3),
        ("java.desktop/sun/print/PrintJobFlavorException.java", 340, 4),
        ("jdk.localedata/sun/util/resources/cldr/ext/CurrencyNames_hi.java", 16248, 4),
        ("jdk.compiler/com/sun/tools/javac/jvm/PoolWriter.java", 3576, 4),
        ("java.base/sun/reflect/generics/tree/FloatSignature.java", 312, 4),
        ("jdk.internal.vm.ci/jdk/vm/ci/code/RegisterConfig.java", 616, 7),
        ("java.desktop/javax/swing/SwingPaintEventDispatcher.java", 906, 9),
        ("jdk.localedata/sun/util/resources/cldr/ext/CurrencyNames_az.java", 5229, 7),
        ("java.base/javax/crypto/spec/GCMParameterSpec.java", 516, 3),
        ("java.base/sun/nio/ch/SinkChannelImpl.java", 1928, 8),
        ("jdk.localedata/sun/text/resources/cldr/ext/FormatData_sq_XK.java", 370, 8),
        ("java.xml/com/sun/org/apache/xml/internal/dtm/ref/IncrementalSAXSource_Filter.java", 4894, 8),
        ("jdk.compiler/com/sun/source/doctree/InheritDocTree.java", 358, 6),
        ("jdk.javadoc/jdk/javadoc/internal/doclets/toolkit/taglets/ValueTaglet.java", 339, 5),
        ("jdk.jconsole/sun/tools/jconsole/MaximizableInternalFrame.java", 1698, 5),
        ("jdk.javadoc/jdk/javadoc/internal/doclets/formats/html/PreviewListWriter.java", 823, 3),
        ("java.compiler/javax/lang/model/element/ElementVisitor.java", 1866, 8),
        ("java.xml/com/sun/org/apache/xml/internal/dtm/DTMDOMException.java", 272, 9),
        ("jdk.javadoc/jdk/javadoc/internal/doclets/formats/html/WriterFactoryImpl.java", 1321, 3),
        ("jdk.zipfs/jdk/nio/zipfs/ZipUtils.java", 1876, 5),
        ("jdk.localedata/sun/util/resources/cldr/ext/CurrencyNames_sbp.java", 1382, 4),
        ("jdk.localedata/sun/text/resources/ext/FormatData_mt.java", 1256, 6),
        ("jdk.jshell/jdk/jshell/execution/DemultiplexInput.java", 935, 8),
        ("java.desktop/com/sun/imageio/stream/StreamFinalizer.java", 549, 3),
        ("java.desktop/sun/awt/AWTIcon32_java_icon48_png.java", 15864, 9),
        ("java.desktop/javax/swing/text/AbstractWriter.java", 519, 3),
        ("java.xml/com/sun/org/apache/bcel/internal/classfile/ClassFormatException.java", 449, 3),
        ("java.xml/com/sun/org/apache/xerces/internal/util/DefaultErrorHandler.java", 497, 7),
        ("java.base/jdk/internal/org/objectweb/asm/Label.java", 7821, 7),
        ("java.desktop/javax/print/attribute/standard/PresentationDirection.java", 1205, 7),
        ("java.desktop/java/awt/image/BufferedImageFilter.java", 725, 6),
        ("java.naming/javax/naming/InterruptedNamingException.java", 587, 9),
        ("java.base/java/nio/charset/Charset.java", 2231, 10),
        ("java.desktop/sun/awt/X11/XIMValuesList.java", 428, 5),
        ("java.security.sasl/com/sun/security/sasl/digest/FactoryImpl.java", 713, 7),
        ("jdk.hotspot.agent/sun/jvm/hotspot/oops/InstanceMirrorKlass.java", 289, 8),
        ("jdk.localedata/sun/text/resources/ext/JavaTimeSupplementary_ar_JO.java", 1218, 6),
        ("java.compiler/javax/lang/model/util/AbstractElementVisitor9.java", 339, 7),
        ("jdk.localedata/sun/text/resources/cldr/ext/FormatData_ff_Adlm_SL.java", 988, 6),
        ("java.desktop/java/awt/ScrollPaneAdjustable.java", 626, 10),
        ("java.naming/javax/naming/directory/Attributes.java", 312, 3),
        ("java.xml/com/sun/org/apache/bcel/internal/classfile/ParameterAnnotations.java", 566, 6),
        ("java.xml/com/sun/org/apache/bcel/internal/classfile/Method.java", 2116, 4),
        ("java.base/sun/security/pkcs/PKCS9Attribute.java", 3331, 7),
        ("java.desktop/javax/swing/JInternalFrame.java", 16351, 4),
        ("jdk.localedata/sun/text/resources/cldr/ext/FormatData_nus.java", 2547, 7),
        ("jdk.incubator.vector/jdk/incubator/vector/Float512Vector.java", 6518, 5),
        ("java.base/java/nio/channels/GatheringByteChannel.java", 899, 3),
        ("jdk.jfr/jdk/jfr/internal/EventInstrumentation.java", 1032, 3),
        ("java.net.http/jdk/internal/net/http/frame/ErrorFrame.java", 760, 6),
        ("java.datatransfer/java/awt/datatransfer/FlavorEvent.java", 566, 8),
        ("java.base/sun/util/locale/provider/TimeZoneNameProviderImpl.java", 1093, 6),
        ("jdk.compiler/com/sun/source/tree/OpensTree.java", 267, 6),
        ("jdk.jfr/jdk/jfr/internal/ChunkInputStream.java", 497, 10),
        ("java.base/jdk/internal/jimage/ImageStrings.java", 502, 8),
        ("java.desktop/javax/swing/plaf/nimbus/OptionPaneMessageAreaPainter.java", 788, 5),
        ("java.security.jgss/sun/security/krb5/KrbApReq.java", 5412, 8),
        ("jdk.internal.le/jdk/internal/org/jline/utils/Signals.java", 500, 10),
        ("jdk.hotspot.agent/sun/jvm/hotspot/utilities/HashtableEntry.java", 284, 8),
        ("java.security.jgss/sun/security/krb5/internal/crypto/HmacSha1Aes256CksumType.java", 835, 3),
        ("java.net.http/jdk/internal/net/http/websocket/CheckFailedException.java", 263, 8),
        ("jdk.localedata/sun/text/resources/cldr/ext/FormatData_ur.java", 512, 10),
        ("jdk.incubator.foreign/jdk/incubator/foreign/GroupLayout.java", 1623, 9),
        ("jdk.hotspot.agent/sun/jvm/hotspot/debugger/cdbg/basic/BasicLineNumberMapping.java", 772, 7),
        ("jdk.compiler/com/sun/tools/sjavac/Util.java", 325, 4),
        ("java.base/java/security/spec/EdECPublicKeySpec.java", 539, 4),
        ("java.base/java/net/PlainDatagramSocketImpl.java", 692, 3),
        ("java.xml/com/sun/org/apache/bcel/internal/generic/ANEWARRAY.java", 525, 7),
        ("jdk.charsets/sun/nio/cs/ext/IBM833.java", 463, 3),
        ("java.desktop/sun/awt/util/IdentityArrayList.java", 2063, 3),
        ("java.xml/com/sun/org/apache/xpath/internal/ExpressionNode.java", 340, 3),
        ("java.xml/com/sun/org/apache/xerces/internal/xni/XMLDTDContentModelHandler.java", 2087, 7),
        ("java.desktop/sun/awt/X11/XAtom.java", 4292, 9),
        ("java.base/java/nio/file/DirectoryStream.java", 786, 3),
        ("jdk.compiler/com/sun/tools/javac/code/Symtab.java", 8195, 7),
        ("java.management/sun/management/LazyCompositeData.java", 1146, 10),
        ("java.base/jdk/internal/org/objectweb/asm/commons/SignatureRemapper.java", 1271, 9),
        ("jdk.jconsole/sun/tools/jconsole/Messages.java", 1934, 6),
        ("java.desktop/javax/print/attribute/standard/NumberOfInterveningJobs.java", 575, 10),
        ("jdk.jfr/jdk/jfr/internal/EventWriterMethod.java", 621, 8),
        ("java.security.jgss/sun/security/krb5/internal/crypto/RsaMd5CksumType.java", 435, 8),
        ("java.base/java/util/Queue.java", 1179, 3),
        ("java.xml/com/sun/org/apache/xerces/internal/util/SAX2XNI.java", 496, 3),
        ("java.management/com/sun/jmx/mbeanserver/Introspector.java", 3078, 5),
        ("java.base/jdk/internal/reflect/AccessorGenerator.java", 3209, 7),
        ("java.naming/com/sun/jndi/ldap/BindingWithControls.java", 355, 10),
        ("jdk.jpackage/jdk/jpackage/internal/PlatformPackage.java", 370, 10),
        ("java.xml.crypto/javax/xml/crypto/dsig/SignatureMethod.java", 364, 4),
        ("jdk.localedata/sun/text/resources/ext/FormatData_en_AU.java", 675, 9),
        ("java.base/jdk/internal/reflect/UnsafeQualifiedDoubleFieldAccessorImpl.java", 304, 8),
        ("jdk.hotspot.agent/sun/jvm/hotspot/ci/ciType.java", 412, 8),
        ("jdk.localedata/sun/util/resources/cldr/ext/CurrencyNames_en_GG.java", 683, 3),
        ("java.xml/com/sun/org/apache/xalan/internal/xsltc/dom/MultiValuedNodeHeapIterator.java", 458, 7),
        ("java.desktop/javax/imageio/ImageReader.java", 26759, 5),
        ("jdk.xml.dom/org/w3c/dom/html/HTMLDocument.java", 824, 10),
        ("jdk.compiler/sun/tools/serialver/resources/serialver_zh_CN.java", 299, 6),
        ("jdk.localedata/sun/util/resources/cldr/ext/TimeZoneNames_en_MU.java", 1487, 6),
        ("jdk.compiler/com/sun/tools/javac/code/TargetType.java", 1431, 3),
        ("jdk.localedata/sun/util/resources/cldr/ext/LocaleNames_pt.java", 678, 8),
        ("java.base/jdk/internal/access/JavaSecuritySignatureAccess.java", 394, 5),
        ("java.base/com/sun/crypto/provider/BlowfishKeyGenerator.java", 926, 10),
        ("java.xml/com/sun/java_cup/internal/runtime/Symbol.java", 682, 6),
        ("java.base/java/text/spi/NumberFormatProvider.java", 573, 9),
        ("jdk.security.auth/com/sun/security/auth/UnixPrincipal.java", 1125, 3),
        ("jdk.jfr/jdk/jfr/internal/jfc/model/XmlFlag.java", 372, 9),
        ("java.desktop/com/sun/media/sound/SoftFilter.java", 388, 6),
        ("java.naming/javax/naming/NamingSecurityException.java", 651, 6),
        ("java.desktop/sun/swing/plaf/WindowsKeybindings.java", 6163, 8),
        ("java.desktop/sun/font/FontDesignMetrics.java", 4260, 4),
        ("java.desktop/javax/swing/plaf/nimbus/MenuBarPainter.java", 1379, 5),
        ("java.base/jdk/internal/reflect/FieldAccessorImpl.java", 804, 7),
    ),
    digest="ce1ab62d5f90fc6a88f3efca6f81eed80e82839edd34e0bc68d5cba7ece96f8b",
)
# END MANIFEST smollm2-jdk17-unseen

MANIFESTS: tuple[WindowManifest, ...] = (SMOLLM2_JDK17_UNSEEN,)
