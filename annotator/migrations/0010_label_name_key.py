"""Label names compare by label_key (NFKC + casefold) computed in Python and stored, instead of the
database's own lower(), which differs from Python's (PostgreSQL lower('İ') is 'i̇' or 'i')."""

import unicodedata

import django.core.validators
from django.db import migrations, models


def fill_keys(apps, schema_editor):
    LabelClass = apps.get_model("annotator", "LabelClass")
    for label in LabelClass.objects.all().iterator():
        label.name_key = unicodedata.normalize("NFKC", label.name).casefold()
        label.save(update_fields=["name_key"])


class Migration(migrations.Migration):
    dependencies = [("annotator", "0009_box_attributes_review_edit")]

    operations = [
        migrations.AddField(model_name="labelclass", name="name_key",
                            field=models.CharField(default="", editable=False, max_length=300), preserve_default=False),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="labelclass", name="label_name_unique_per_project"),
        migrations.AddConstraint(model_name="labelclass", constraint=models.UniqueConstraint(
            fields=("project", "name_key"), name="label_name_key_unique_per_project")),
        migrations.AlterField(model_name="labelclass", name="color", field=models.CharField(
            default="#1f77b4", max_length=7, validators=[django.core.validators.RegexValidator(
                "\\A#[0-9a-fA-F]{6}\\Z", "Use a colour like #1f77b4.")])),
    ]
