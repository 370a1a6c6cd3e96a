// Parse a Jenkinsfile with Groovy's own parser, up to the CONVERSION phase: the syntax is checked and the AST
// built, without resolving classes (Jenkins' steps are not classes outside Jenkins). Prints each `sh` step's script,
// base64-encoded, one per line; a file that does not parse fails with Groovy's error.
import org.codehaus.groovy.ast.CodeVisitorSupport
import org.codehaus.groovy.ast.expr.ArgumentListExpression
import org.codehaus.groovy.ast.expr.ConstantExpression
import org.codehaus.groovy.ast.expr.MapExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.Phases

class ShSteps extends CodeVisitorSupport {
    List<String> scripts = []

    void visitMethodCallExpression(MethodCallExpression call) {
        if (call.methodAsString == 'sh') {
            def args = call.arguments instanceof ArgumentListExpression ? call.arguments.expressions : []
            def first = args ? args[0] : null
            if (first instanceof MapExpression) {
                first = first.mapEntryExpressions.find { it.keyExpression.text == 'script' }?.valueExpression
            }
            if (!(first instanceof ConstantExpression)) {
                throw new IllegalStateException("line ${call.lineNumber}: an sh step whose script is not a plain string")
            }
            scripts << first.value.toString()
        }
        super.visitMethodCallExpression(call)
    }
}

def unit = new CompilationUnit()
unit.addSource(new File(args[0]))
unit.compile(Phases.CONVERSION)
def visitor = new ShSteps()
// a script's statements are the body of its class's run() method: visiting the methods sees each step once
unit.AST.modules.each { module -> module.classes.each { cls -> cls.methods.each { method -> method.code?.visit(visitor) } } }
visitor.scripts.each { println it.bytes.encodeBase64().toString() }
