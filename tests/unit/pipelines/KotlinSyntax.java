// Kotlin's own parser on Kotlin scripts: prints each syntax error as <file>:<line>: <what>, exits 1 when there is one.
// Parsing only: TeamCity's DSL library (org.jetbrains.teamcity:configs-dsl-kotlin-*) is not on Maven Central, so its
// names cannot be resolved here. Run as a single-file program: java -cp <kotlin-compiler-embeddable and its
// dependencies> KotlinSyntax.java FILE... (tests/unit/test_pipelines.py).
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import org.jetbrains.kotlin.cli.FrontendConfigurationKeysKt;
import org.jetbrains.kotlin.cli.common.messages.MessageCollector;
import org.jetbrains.kotlin.compiler.plugin.CompilerPluginRegistrar;
import org.jetbrains.kotlin.cli.jvm.compiler.EnvironmentConfigFiles;
import org.jetbrains.kotlin.cli.jvm.compiler.KotlinCoreEnvironment;
import org.jetbrains.kotlin.com.intellij.openapi.Disposable;
import org.jetbrains.kotlin.com.intellij.openapi.util.Disposer;
import org.jetbrains.kotlin.com.intellij.psi.PsiErrorElement;
import org.jetbrains.kotlin.com.intellij.psi.util.PsiTreeUtil;
import org.jetbrains.kotlin.config.CommonConfigurationKeys;
import org.jetbrains.kotlin.config.CompilerConfiguration;
import org.jetbrains.kotlin.psi.KtFile;
import org.jetbrains.kotlin.psi.KtPsiFactory;

public class KotlinSyntax {
    public static void main(String[] args) throws Exception {
        Disposable root = Disposer.newDisposable();
        CompilerConfiguration configuration = new CompilerConfiguration();
        configuration.put(CommonConfigurationKeys.MESSAGE_COLLECTOR_KEY, MessageCollector.Companion.getNONE());
        FrontendConfigurationKeysKt.setExtensionsStorage(configuration, new CompilerPluginRegistrar.ExtensionStorage());
        KotlinCoreEnvironment environment = KotlinCoreEnvironment.createForProduction(
            root, configuration, EnvironmentConfigFiles.JVM_CONFIG_FILES);
        int problems = 0;
        for (String name : args) {
            String text = Files.readString(Path.of(name));
            String base = Path.of(name).getFileName().toString();
            KtFile file = new KtPsiFactory(environment.getProject(), false).createFile(base, text);
            Collection<PsiErrorElement> errors = PsiTreeUtil.collectElementsOfType(file, PsiErrorElement.class);
            for (PsiErrorElement error : errors) {
                int offset = error.getTextOffset();
                int line = text.substring(0, Math.min(offset, text.length())).split("\n", -1).length;
                System.out.println(name + ":" + line + ": " + error.getErrorDescription());
                problems++;
            }
            System.out.println(name + ": script=" + file.isScript() + " syntax errors=" + errors.size());
        }
        Disposer.dispose(root);
        System.exit(problems == 0 ? 0 : 1);
    }
}
